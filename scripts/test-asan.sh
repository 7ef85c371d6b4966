#!/usr/bin/env bash
# npm run test:asan — the addon (and the reference servers) built with AddressSanitizer and
# UndefinedBehaviorSanitizer, and the native-heavy tests run against that build.
#
# Node itself is not instrumented, so the ASan runtime is preloaded (it must come first) and
# leak detection is off: Node's own allocations at exit are not ours to judge. Every report is
# written to a file under $reports; the run fails if any appears, whatever the tests said.
set -euo pipefail
cd "$(dirname "$0")/.."

flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
npx cmake-js compile --log-level warn --out build-asan --CDCMAKE_BUILD_TYPE=RelWithDebInfo \
  "--CDCMAKE_CXX_FLAGS=$flags" "--CDCMAKE_C_FLAGS=$flags" \
  "--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" \
  "--CDCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT

export POSIX_SERVERS_ADDON="$PWD/build-asan/Release/posix_servers.node"
[ -f "$POSIX_SERVERS_ADDON" ] || POSIX_SERVERS_ADDON="$PWD/build-asan/RelWithDebInfo/posix_servers.node"
[ -f "$POSIX_SERVERS_ADDON" ] || POSIX_SERVERS_ADDON=$(find "$PWD/build-asan" -name posix_servers.node | head -1)
export POSIX_SERVERS_REF_DIR="$PWD/build-asan/ref"
export POSIX_SERVERS_LABS_DIR="$PWD/build-asan/labs"
echo "sanitizer build: $POSIX_SERVERS_ADDON and $POSIX_SERVERS_REF_DIR"

status=0
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS="detect_leaks=0:log_path=$reports/asan:abort_on_error=1" \
UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan" \
  npx jest --runInBand test/behaviour.test.ts test/lifecycle.test.ts test/lab-switches.test.ts test/hardening.test.ts \
    test/loadgen.test.ts test/reference.test.ts test/observer.test.ts test/faults.test.ts test/unref.test.ts \
    test/net-conventions.test.ts test/pools.test.ts test/designs.test.ts test/services.test.ts test/exec.test.ts \
  || status=$?

if compgen -G "$reports/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  cat "$reports"/* >&2
  exit 1
fi
echo "sanitizers: 0 reports"
exit "$status"
