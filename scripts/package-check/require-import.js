// Run by scripts/check-package.sh in a project that installed the tarball, under each Node it
// checks: require and import give the same names (the ESM entry re-exports the CommonJS one).
const cjs = require('posix-servers');
if (typeof cjs.startServer !== 'function') throw new Error('require: no startServer');
import('posix-servers').then((esm) => {
  const names = (m) =>
    Object.keys(m)
      // Node's own names for a CommonJS module seen from ESM: 'default', and since Node 23 'module.exports'.
      .filter((k) => k !== 'default' && k !== '__esModule' && k !== 'module.exports')
      .sort()
      .join();
  const want = names(cjs);
  const got = names(esm);
  if (want !== got) throw new Error(`import and require differ: ${got} / ${want}`);
  console.log(`require and import: the same ${Object.keys(cjs).length} names (Node ${process.version})`);
});
