#!/usr/bin/env bash
# bash scripts/fresh-machine.sh [--peers | JEST ARGS…]: `npm test` as on a fresh Debian with
# Node, a C/C++ toolchain and cmake only. In a mount namespace of its own (nothing else on the
# machine sees it), every file that the Debian packages such a machine lacks put in a bin, sbin,
# lib or include directory is hidden behind /dev/null — the peers and tools the tests use (strace,
# socat, ucspi-tcp's tcpserver, xinetd), iproute2, procps, liburing-dev, and Debian's chromium with
# the NSS libraries it brought; the addon and the C programs are built anew into an empty build/
# (so without ref-uring, as where liburing-dev is missing); then jest runs with CI unset.
# It passes only if the run is green, and, for the whole suite (no JEST ARGS): the browser tests
# ran with the packaged browser, and the run's closing summary skipped exactly the programs
# expected to be missing (test/external.ts) — nothing more is skipped, nothing less is announced.
# --peers (what CI runs: a whole second suite would cost it 7 to 10 minutes) runs only the test
# files that ask for a peer program (needs()) or a browser, with the same two checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# The packages a fresh Debian lacks that a test could reach for (installed ones are hidden).
PACKAGES=(strace socat ucspi-tcp ucspi-tcp-ipv6 xinetd iproute2 procps liburing-dev liburing2
  chromium chromium-common chromium-sandbox libnss3 libnspr4)
# What the run must then skip, loudly: test/external.ts's names.
EXPECTED_SKIPS="ref-uring socat strace tcpserver xinetd"

if [ "${1:-}" = "--peers" ]; then
  files=$(grep -l "needs('" test/*.test.ts)
  # shellcheck disable=SC2086
  set -- --whole-checks $files test/ui.test.ts
fi

if [ "${1:-}" != "--inside" ]; then
  whole=0
  if [ $# = 0 ]; then
    whole=1
  elif [ "$1" = "--whole-checks" ]; then
    whole=1
    shift
  fi
  # Root (CI) needs only a mount namespace; anyone else maps themselves to root in a user namespace.
  as=()
  [ "$(id -u)" = 0 ] || as=(--user --map-root-user)
  log=$(mktemp)
  build=$(mktemp -d)
  chmod 755 "$build" # as build/ is: a test runs the addon as nobody (test/uring.test.ts)
  trap 'rm -rf "$log" "$build"' EXIT
  status=0
  FRESH_BUILD="$build" unshare "${as[@]}" --mount --propagation private bash "$0" --inside "$@" 2>&1 | tee "$log" ||
    status=$?
  fail() {
    echo "fresh-machine: $*" >&2
    exit 1
  }
  [ "$status" = 0 ] || fail "the run failed (exit $status)"
  grep -q 'ref-uring is not built' "$log" || fail "the build did not leave ref-uring out: liburing was not hidden"
  grep -Eq '^Tests: +([0-9]+ skipped, )?[1-9][0-9]* passed, [0-9]+ total$' "$log" ||
    fail "no test passed, or some failed"
  if [ "$whole" = 1 ]; then
    grep -q '^ui.test.ts: browser @sparticuz/chromium ' "$log" ||
      fail "the browser tests did not run with the packaged browser"
    skipped=$(sed -nE 's/^  (\S+) — Debian: \S+$/\1/p' "$log" | sort -u | tr '\n' ' ' | sed 's/ $//')
    [ "$skipped" = "$EXPECTED_SKIPS" ] ||
      fail "the skip summary names '${skipped}', not '${EXPECTED_SKIPS}'"
    echo "fresh-machine: green without ${PACKAGES[*]}; skipped, loudly: ${skipped}"
  else
    echo "fresh-machine: green without ${PACKAGES[*]}"
  fi
  exit 0
fi
shift

hidden=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || continue
  while IFS= read -r path; do
    case "$path" in
      /bin/* | /sbin/* | /lib/* | /lib64/* | /usr/bin/* | /usr/sbin/* | /usr/lib/* | /usr/lib64/* | /usr/include/*) ;;
      *) continue ;;
    esac
    [ -f "$path" ] || continue # directories, and links to nothing
    real=$(readlink -f "$path")
    mountpoint -q "$real" && continue # already hidden (through another link)
    mount --bind /dev/null "$real"
    hidden+=("$pkg:$real")
  done < <(dpkg -L "$pkg")
done
echo "fresh-machine: ${#hidden[@]} files hidden, of: $(printf '%s\n' "${hidden[@]%%:*}" | sort -u | tr '\n' ' ')"
# A program is there when a directory of PATH holds it as an executable regular file (bash's
# command -v also names a file it cannot run, as a file behind /dev/null is).
on_path() {
  local dir
  IFS=: read -ra dirs <<<"$PATH"
  for dir in "${dirs[@]}"; do
    [ -f "$dir/$1" ] && [ -x "$dir/$1" ] && echo "$dir/$1" && return 0
  done
  return 1
}
for program in strace socat tcpserver xinetd ip ss ps chromium; do
  if where=$(on_path "$program"); then
    echo "fresh-machine: $program is still there: $where" >&2
    exit 1
  fi
done

# The native build of a fresh machine: into an empty build/, with liburing's headers and library hidden.
mkdir -p build
mount --bind "$FRESH_BUILD" build
node scripts/install.js

unset CI PUPPETEER_EXECUTABLE_PATH CHROMIUM
exec npx jest "$@"
