#!/usr/bin/env bash
# npm run format / npm run format:check — Prettier for the TypeScript and JavaScript in lib/, test/
# and scripts/; clang-format (Debian's clang-format package) for the C and C++ in native/ (labs' C
# included), ref/ and test/native/.
# With --check nothing is written; the run fails on the first file that is not formatted.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
[ "${1:-}" = "--check" ] && check=1

if ! command -v clang-format >/dev/null 2>&1; then
  echo "format: clang-format is not installed (apt-get install clang-format)" >&2
  exit 1
fi

mapfile -t c_files < <(git ls-files --cached --others --exclude-standard -- 'native/*.cc' 'native/*.h' 'native/*.c' 'ref/*.c' 'ref/*.h' 'test/native/*.cc')
if [ "$check" = 1 ]; then
  npx prettier --check lib test scripts eslint.config.mjs
  clang-format --dry-run --Werror "${c_files[@]}"
  echo "format: all files formatted"
else
  npx prettier --write --log-level warn lib test scripts eslint.config.mjs
  clang-format -i "${c_files[@]}"
fi
