// Run by scripts/check-package.sh after an install that compiled: the installed package keeps only
// the native files loaded at run time (scripts/native-files.js), in build/ — no CMakeFiles/,
// CMakeCache.txt, object files, static libraries or build scripts anywhere in it.
// Usage: only-runtime-files.js <the installed package's directory>
const { readdirSync } = require('node:fs');
const { join, relative, resolve } = require('node:path');

const pkg = resolve(process.argv[2]);
const { FILES } = require(join(pkg, 'scripts', 'native-files.js'));
const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
const build = join(pkg, 'build');
const got = walk(build)
  .map((f) => relative(build, f))
  .sort();
const want = FILES.map((f) => f.build).sort();
const stray = walk(pkg).filter((f) =>
  /\/CMakeFiles\/|\.(a|o)$|CMakeCache\.txt$|\.ninja$|\/Makefile$|cmake_install\.cmake$/.test(f),
);
if (got.join('\n') !== want.join('\n') || stray.length > 0) {
  console.error(`build/ holds: ${got.join(' ')}\nwanted only: ${want.join(' ')}`);
  if (stray.length > 0) console.error(`build leftovers: ${stray.map((f) => relative(pkg, f)).join(' ')}`);
  process.exit(1);
}
console.log(`compiled: only the ${want.length} files loaded at run time are in build/, nothing else was left`);
