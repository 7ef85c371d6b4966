#!/usr/bin/env bash
# npm run docs:assets — every picture and sample output in docs/ rebuilt from runs made now, with
# the build of this checkout (npm run build first after a change):
#   - the output samples (`<!-- output: COMMAND -->` blocks: help texts, a trace), by running each
#     command (scripts/doc-samples.js; test/docs.test.ts fails when one no longer matches; a sample
#     that differs only in numbers is kept);
#   - docs/trace-zombies.svg, the zombies lab's picture (`lab zombies --svg`);
#   - docs/ui.png, the live view's screenshot, taken by the browser test (test/ui.test.ts: a fork
#     server with three clients, in headless chromium driven by puppeteer-core).
# The benchmark's charts (docs/bench.svg, docs/bench-designs.svg) come with BENCHMARKS.md's tables
# from `npm run bench:doc` (half an hour, on a quiet machine); `--bench` runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."

node scripts/doc-samples.js --write
node dist/cli/main.js lab zombies --svg docs/trace-zombies.svg >/dev/null
echo "docs/trace-zombies.svg: posix-servers lab zombies --svg"
UPDATE_UI_SCREENSHOT=1 npx jest test/ui.test.ts -t 'fork: the tree'
echo "docs/ui.png: test/ui.test.ts"
if [ "${1:-}" = "--bench" ]; then npm run bench:doc; fi
