#!/usr/bin/env bash
# npm run test:asan  (bash scripts/test-sanitizers.sh address): every native binary built with
#                    AddressSanitizer + UndefinedBehaviorSanitizer, by clang, into build-asan/
# npm run test:tsan  (bash scripts/test-sanitizers.sh thread): the same with ThreadSanitizer, by
#                    g++, into build-tsan/
#
# Each run proves it could have failed before it counts on passing:
#   1. instrumented: every object file of the build was compiled with the sanitizer (it calls the
#      runtime's init), and every binary — the addon (with the load generator), the master program,
#      the C references, the labs' servers, the native test programs — contains instrumented
#      accesses (`nm -u`: __asan_report_*/__asan_load* and __ubsan_handle_*, or __tsan_read*/
#      __tsan_write*). The sanitizer is PS_SANITIZE, applied by CMakeLists.txt to every target.
#   2. positive controls: the addon (loaded by Node) and the master program each commit the planted
#      bugs of native/core/sanitizer_controls.cc in a child process — a heap-buffer overflow and a
#      signed integer overflow, or a data race — and each must be reported, from that file.
#   3. the real run: the native-heavy jest suites (and test/native's ring stress) against this
#      build. Any report, in any process (Node, the master, its children, the C programs), fails
#      the run, whatever the tests said; so does a failed test.
#
# Node itself is not instrumented: the sanitizer's runtime is preloaded into it (LD_PRELOAD, and
# every process started from it inherits that), and reports go to files below a fresh directory
# (log_path), so that none is lost with a process whose stderr is /dev/null (the master's).
#
# Why two compilers: g++'s ASan and UBSan are two runtimes, and the ASan one's interface symbols
# interpose on the UBSan one's, so UBSan's log_path is never applied and its reports can only go to
# stderr; clang builds UBSan into its ASan runtime, which writes both to one log_path. clang 14's
# shared TSan runtime (the one Node can preload) crashes at start on this machine; g++'s works.
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-}
case "$kind" in
  address)
    name=test:asan sanitize=address,undefined out=build-asan cc=clang cxx=clang++
    runtime_name=libclang_rt.asan-$(uname -m).so
    controls=(heap-overflow signed-overflow)
    # The planted bug and the words its report must hold.
    expect_heap_overflow='AddressSanitizer: heap-buffer-overflow'
    expect_signed_overflow='runtime error: signed integer overflow'
    instrumented=('__asan_(report_|load)' '__ubsan_handle_')
    init_symbol=__asan_init
    # Leaks: Node's own allocations at exit are not ours to judge, and a forked child _exit()s.
    options="detect_leaks=0:abort_on_error=1:print_stacktrace=1"
    tests=(behaviour lifecycle lab-switches hardening loadgen reference observer faults unref net-conventions pools
      designs services exec uring)
    ;;
  thread)
    name=test:tsan sanitize=thread out=build-tsan cc=gcc cxx=g++
    runtime_name=libtsan.so
    controls=(race)
    expect_race='ThreadSanitizer: data race'
    instrumented=('__tsan_(read|write)')
    init_symbol=__tsan_init
    # ignore_noninstrumented_modules: Node, V8 and libuv are not instrumented; only accesses of
    # the instrumented code are checked (a race needs one on each side to be seen).
    options="ignore_noninstrumented_modules=1:second_deadlock_stack=1"
    # Not observer: it bounds the voluntary context switches of Node's main thread, which the TSan
    # runtime in that thread changes (one run here: 108 against a bound of 87); the ring is drained
    # while servers write in every other suite, where a race in it would be reported.
    tests=(behaviour lifecycle hardening loadgen faults unref net-conventions pools designs services uring)
    ;;
  *)
    echo "usage: $0 address|thread" >&2
    exit 2
    ;;
esac

fail() {
  echo "$name: FAILED: $*" >&2
  exit 1
}
started=$SECONDS
mark=$SECONDS
# Sets $took to the seconds since the last call.
lap() {
  took="$((SECONDS - mark)) s"
  mark=$SECONDS
}

# ---- the build ----
command -v "$cxx" >/dev/null 2>&1 || fail "$cxx is not installed (CI installs it: .ci/run)"
runtime=$("$cc" -print-file-name="$runtime_name")
[ -f "$runtime" ] || fail "$cc has no $runtime_name (Debian: clang needs libclang-rt-<version>-dev; g++ needs libtsan2)"
# A build directory configured with another compiler (an older run) starts over.
if [ -f "$out/CMakeCache.txt" ] && ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=$(command -v "$cxx")" "$out/CMakeCache.txt"; then
  rm -rf "$out"
fi
npx cmake-js compile --log-level warn --out "$out" --CDCMAKE_BUILD_TYPE=RelWithDebInfo "--CDPS_SANITIZE=$sanitize" \
  "--CDCMAKE_C_COMPILER=$cc" "--CDCMAKE_CXX_COMPILER=$cxx"
lap
echo "$name: built $out with -fsanitize=$sanitize ($cxx) in $took"

# ---- 1. instrumented ----
objects=0
while IFS= read -r -d '' object; do
  grep -q "$init_symbol" <<<"$(nm -u "$object")" || fail "${object#"$out"/} was compiled without -fsanitize=$sanitize"
  objects=$((objects + 1))
done < <(find "$out/CMakeFiles" -path '*.dir/*' -name '*.o' -print0)
[ "$objects" -gt 0 ] || fail "no object files in $out/CMakeFiles"
echo "$name: all $objects object files call $init_symbol"
# An optional file (ref-uring: where liburing.a links) may be missing; said, not failed.
mapfile -t binaries < <(node -p "require('./scripts/native-files').FILES.map((f) => f.build + (f.optional ? ' optional' : '')).join('\n')")
binaries+=(tests/ring-doorbells)
for entry in "${binaries[@]}"; do
  binary=${entry% optional}
  if [ ! -f "$out/$binary" ] && [ "$binary" != "$entry" ]; then
    echo "$name: not built (optional, see CMakeLists.txt): $binary"
    continue
  fi
  [ -f "$out/$binary" ] || fail "$out/$binary was not built"
  counts=()
  for pattern in "${instrumented[@]}"; do
    n=$(grep -cE "$pattern" <<<"$(nm -u "$out/$binary")" || true)
    [ "$n" -gt 0 ] || fail "$out/$binary has no instrumented access (nm -u: no $pattern symbol)"
    counts+=("$n ${pattern}")
  done
  echo "$name: instrumented $binary: $(IFS=,; echo "${counts[*]}" | sed 's/,/, /g')"
done

export POSIX_SERVERS_ADDON="$PWD/$out/Release/posix_servers.node"
export POSIX_SERVERS_REF_DIR="$PWD/$out/ref"
export POSIX_SERVERS_LABS_DIR="$PWD/$out/labs"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The sanitizer's options, writing reports below $1.
sanitizer_env() {
  local log=$1
  case "$kind" in
    address) echo "ASAN_OPTIONS=$options:log_path=$log" "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$log" ;;
    thread) echo "TSAN_OPTIONS=$options:log_path=$log" ;;
  esac
}

# ---- 2. the positive controls ----
for control in "${controls[@]}"; do
  var="expect_${control//-/_}"
  expect=${!var}
  for who in addon master; do
    dir="$scratch/control-$who-$control"
    mkdir "$dir"
    status=0
    if [ "$who" = addon ]; then
      # shellcheck disable=SC2046 # the options are words
      env $(sanitizer_env "$dir/report") LD_PRELOAD="$runtime" POSIX_SERVERS_SANITIZER_CONTROL="$control" \
        node -e 'require(process.env.POSIX_SERVERS_ADDON)' >/dev/null 2>&1 || status=$?
    else
      # shellcheck disable=SC2046
      env $(sanitizer_env "$dir/report") POSIX_SERVERS_SANITIZER_CONTROL="$control" \
        "$out/Release/posix-servers-master" >/dev/null 2>&1 || status=$?
    fi
    report=$(cat "$dir"/report.* 2>/dev/null || true)
    if [ "$status" = 0 ] || ! grep -qF "$expect" <<<"$report" || ! grep -q 'sanitizer_controls\.cc' <<<"$report"; then
      echo "$report" >&2
      fail "the $who's planted $control was not reported (exit status $status): the sanitizer cannot fail this run"
    fi
    echo "$name: control: the $who's planted $control was reported (exit status $status): $(grep -m1 -F "$expect" <<<"$report")"
  done
done
lap
echo "$name: controls done in $took"

# ---- 3. the real run ----
reports="$scratch/reports"
mkdir "$reports"
status=0
# The ring's handshake, on two threads of this build (the fences themselves are test/event-ring's).
# shellcheck disable=SC2046
env $(sanitizer_env "$reports/report") "$out/tests/ring-doorbells" 20000 0 60 || status=$?
[ "$status" = 0 ] || echo "$name: ring-doorbells exited with $status" >&2
files=()
for t in "${tests[@]}"; do files+=("test/$t.test.ts"); done
# Jest without npx: npx runs it through sh, which cannot start with TSan's runtime preloaded.
jest=$(node -p "require.resolve('jest/bin/jest')")
# shellcheck disable=SC2046
env $(sanitizer_env "$reports/report") LD_PRELOAD="$runtime" node "$jest" --runInBand "${files[@]}" ||
  status=$?
lap
echo "$name: tests done in $took"

if compgen -G "$reports/*" >/dev/null; then
  echo "$name: sanitizer reports:" >&2
  cat "$reports"/* >&2
  fail "$(find "$reports" -type f | wc -l) report(s) from the real run (above)"
fi
[ "$status" = 0 ] || fail "the tests failed (exit status $status)"
echo "$name: real run: 0 sanitizer reports (-fsanitize=$sanitize: ${#tests[@]} jest suites and ring-doorbells)"
echo "$name: passed in $((SECONDS - started)) s"
