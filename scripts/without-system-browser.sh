#!/usr/bin/env bash
# bash scripts/without-system-browser.sh [JEST ARGS…] (CI runs it): the browser tests as on a fresh
# machine with Node and a compiler only. In a mount namespace of its own (nothing else on the
# machine sees it), Debian's chromium and the NSS libraries it brought are hidden, each behind
# /dev/null; the tests must then find the browser that the devDependency @sparticuz/chromium ships
# (test/browser.ts), start it, and pass. Fails if they ran with any other browser, or ran none.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--inside" ]; then
  # Root (CI) needs only a mount namespace; anyone else maps themselves to root in a user namespace.
  as=()
  [ "$(id -u)" = 0 ] || as=(--user --map-root-user)
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  status=0
  unshare "${as[@]}" --mount --propagation private bash "$0" --inside "$@" 2>&1 | tee "$log" || status=$?
  [ "$status" = 0 ] || exit "$status"
  grep -q '^ui.test.ts: browser @sparticuz/chromium ' "$log" || {
    echo "without-system-browser: the browser tests did not run with the packaged browser" >&2
    exit 1
  }
  grep -Eq '^Tests: +[1-9][0-9]* passed, [0-9]+ total$' "$log" || {
    echo "without-system-browser: no test passed, or some did not run" >&2
    exit 1
  }
  echo "without-system-browser: the browser tests ran and passed with the packaged browser"
  exit 0
fi
shift

hidden=()
hide() {
  mount --bind /dev/null "$1"
  hidden+=("$1")
}
for f in /usr/bin/chromium /usr/bin/chromium-browser /usr/lib/chromium/chromium; do
  [ -e "$f" ] && hide "$f"
done
# The libraries a fresh Debian lacks and this browser links (the real files, not their links).
for name in libnss3.so libnssutil3.so libsmime3.so libnspr4.so libplc4.so libplds4.so; do
  for f in /usr/lib/*-linux-gnu/"$name" /usr/lib/*-linux-gnu/nss/"$name"; do
    [ -e "$f" ] && hide "$(readlink -f "$f")"
  done
done
echo "without-system-browser: hidden: ${hidden[*]:-nothing (none installed)}"
unset PUPPETEER_EXECUTABLE_PATH CHROMIUM
exec npx jest "${@:-test/ui.test.ts}"
