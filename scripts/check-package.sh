#!/usr/bin/env bash
# npm run check:package (CI runs it after the tests): posix-servers installed as a stranger would,
# from the packed tarball, into projects outside this repository with production dependencies only.
#   1. npm pack (prepack builds the prebuilt binaries); the tarball has every file it needs, its
#      source maps point at shipped files, its Markdown links resolve inside the package.
#   2. npm install <tarball>: the install script uses the prebuilt binaries; require and ESM
#      import give the same names; a TypeScript consumer compiles (module commonjs and nodenext)
#      and runs (fork and thread servers started and closed, `await using`); `npx posix-servers
#      --version`; a short bench uses the prebuilt load generator and C reference.
#   3. npm install --ignore-scripts <tarball>: works as is (the prebuilt addon is found at require).
#   4. npm install --build-from-source <tarball>: the compile fallback (cmake-js is a dependency).
#   5. The install script where a compile is needed and cmake/g++/make are missing: says so.
# Every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
checks=$repo/scripts/package-check

work=$(mktemp -d "${TMPDIR:-/tmp}/posix-servers-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
case "$work" in "$repo"/*) echo "check-package: $work is inside the repository" >&2; exit 1 ;; esac

step() { printf '\ncheck-package: %s\n' "$*"; }
fail() { echo "check-package: FAILED: $*" >&2; exit 1; }
quiet_npm() { timeout "$1" npm "${@:2}" --no-audit --no-fund --loglevel=error; }

# ---- 1. the tarball ----
step "npm pack"
timeout 600 npm pack --pack-destination "$work" >/dev/null 2>"$work/pack.log" || { cat "$work/pack.log" >&2; fail "npm pack"; }
tarball=$(ls "$work"/posix-servers-*.tgz)
version=$(node -p "require('./package.json').version")
mkdir "$work/unpacked"
tar -xzf "$tarball" -C "$work/unpacked"
node - "$work/unpacked/package" <<'EOF'
// The tarball's contents: the prebuilt files of scripts/native-files.js, the entries of
// package.json, no source map pointing outside the package, no Markdown link leading out of it.
const { existsSync, readdirSync, readFileSync, statSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');
const pkg = process.argv[2];
const problems = [];
const nf = require(join(pkg, 'scripts/native-files.js'));
for (const f of nf.FILES) {
  const file = join(pkg, nf.PREBUILDS, nf.platformDir(), f.ship);
  if (!existsSync(file)) problems.push(`missing ${relative(pkg, file)}`);
  else if (f !== nf.ADDON && (statSync(file).mode & 0o111) === 0) problems.push(`${relative(pkg, file)} is not executable`);
}
const meta = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
const entries = [meta.main, meta.types, ...Object.values(meta.bin), JSON.stringify(meta.exports).match(/\.\/[^"]+/g)].flat();
for (const e of entries) if (!existsSync(join(pkg, e))) problems.push(`package.json names ${e}, which is not in the tarball`);
for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'docs/LECTURE.md']) if (!existsSync(join(pkg, f))) problems.push(`missing ${f}`);
if (!readFileSync(join(pkg, 'LICENSE'), 'utf8').startsWith(`${meta.license} License`)) problems.push(`LICENSE is not the ${meta.license} license`);
const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
const files = walk(pkg);
let maps = 0;
for (const map of files.filter((f) => f.endsWith('.map'))) {
  maps++;
  for (const source of JSON.parse(readFileSync(map, 'utf8')).sources) {
    if (!existsSync(resolve(dirname(map), source))) problems.push(`${relative(pkg, map)} points at ${source}, not shipped`);
  }
}
let links = 0;
for (const md of files.filter((f) => f.endsWith('.md'))) {
  const text = readFileSync(md, 'utf8').replace(/```[\s\S]*?```/g, '');
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^(https?:|mailto:|#)/.test(target)) continue;
    links++;
    const path = resolve(dirname(md), decodeURI(target.split('#')[0]));
    if (!path.startsWith(pkg + '/')) problems.push(`${relative(pkg, md)} links out of the package: ${target}`);
    else if (!existsSync(path)) problems.push(`${relative(pkg, md)} links to ${target}, not shipped`);
  }
}
if (problems.length) {
  console.error(problems.map((p) => `  ${p}`).join('\n'));
  process.exit(1);
}
console.log(`tarball: ${files.length} files; prebuilt ${nf.platformDir()}: ${nf.FILES.map((f) => f.ship).join(', ')}; ${maps} source maps and ${links} Markdown links resolve inside the package`);
EOF

# A project of its own, outside the repository: only the tarball and what it depends on.
new_project() {
  mkdir -p "$1"
  (cd "$1" && npm init -y >/dev/null)
}

# ---- 2. a plain install ----
app=$work/app
new_project "$app"
step "npm install <tarball> (production dependencies only)"
(cd "$app" && quiet_npm 600 install --omit=dev --foreground-scripts "$tarball") 2>&1 | tee "$work/install.log"
grep -q 'using the prebuilt binaries' "$work/install.log" || fail "the install script did not use the prebuilt binaries"
[ ! -e "$app/node_modules/posix-servers/build" ] || fail "the install compiled although the prebuilt binaries load"
[ ! -e "$app/node_modules/typescript" ] || fail "a development dependency was installed"

cd "$app"
step "require and import"
timeout 60 node -e "
const cjs = require('posix-servers');
if (typeof cjs.startServer !== 'function') throw new Error('require: no startServer');
import('posix-servers').then((esm) => {
  const names = (m) => Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort().join();
  const want = names(cjs), got = names(esm);
  if (want !== got) throw new Error('import and require differ: ' + got + ' / ' + want);
  console.log('require and import: the same ' + Object.keys(cjs).length + ' names');
});"

step "TypeScript consumer: module commonjs and module nodenext"
cp "$checks"/consumer.ts "$checks"/consumer.mts "$checks"/tsconfig.*.json "$app/"
for config in commonjs nodenext; do
  timeout 120 "$repo/node_modules/.bin/tsc" -p "tsconfig.$config.json" --typeRoots "$repo/node_modules/@types" || fail "tsc ($config)"
done
timeout 60 node out-commonjs/consumer.js
timeout 60 node out-nodenext/consumer.js
timeout 60 node out-nodenext/consumer.mjs

step "npx posix-servers --version, --help"
[ "$(timeout 60 npx --no-install posix-servers --version)" = "$version" ] || fail "--version did not print $version"
timeout 60 npx --no-install posix-servers serve --help | grep -q -- '--max-clients' || fail "serve --help"

step "bench: the prebuilt load generator against the prebuilt C reference"
timeout 120 npx --no-install posix-servers bench --models thread,ref-thread --connections 1 --duration 0.2 --repeat 1 2>"$work/bench.err" | tee "$work/bench.out"
grep -q '^ref-thread ' "$work/bench.out" || fail "bench did not run ref-thread: $(cat "$work/bench.err")"
! grep -q '^skipped' "$work/bench.out" || fail "bench skipped a model"

# ---- 3. --ignore-scripts ----
step "npm install --ignore-scripts <tarball>"
new_project "$work/app-no-scripts"
cd "$work/app-no-scripts"
quiet_npm 600 install --omit=dev --ignore-scripts "$tarball"
timeout 60 node -e "
const { startServer } = require('posix-servers');
(async () => {
  for (const model of ['fork', 'thread']) {
    const server = await startServer({ model });
    await server.close();
    console.log('--ignore-scripts: ' + model + ' server started and closed');
  }
})().catch((e) => { console.error(e); process.exit(1); });"
[ "$(timeout 60 npx --no-install posix-servers -v)" = "$version" ] || fail "-v after --ignore-scripts"

# ---- 4. the compile fallback ----
step "npm install --build-from-source <tarball> (cmake-js from dependencies)"
new_project "$work/app-source"
cd "$work/app-source"
quiet_npm 900 install --omit=dev --build-from-source "$tarball"
[ -e node_modules/posix-servers/build/Release/posix_servers.node ] || fail "--build-from-source did not compile"
timeout 60 node -e "
const { startServer } = require('posix-servers');
startServer({ model: 'fork' }).then((s) => s.close()).then(() => console.log('compiled addon: fork server started and closed'));"

# ---- 5. no compiler where one is needed ----
step "the install script without cmake, g++ and make"
mkdir "$work/empty-bin"
set +e
PATH=$work/empty-bin npm_config_build_from_source=true "$(command -v timeout)" 60 "$(command -v node)" \
  "$app/node_modules/posix-servers/scripts/install.js" 2>"$work/no-tools.err"
status=$?
set -e
[ "$status" -ne 0 ] || fail "the install script succeeded without build tools"
grep -q 'apt-get install cmake g++ make' "$work/no-tools.err" || fail "no hint to install the tools: $(cat "$work/no-tools.err")"
sed 's/^/  /' "$work/no-tools.err"

step "all checks passed"
