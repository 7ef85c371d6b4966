// Run by scripts/check-package.sh after the consumers ran under several Nodes: package.json's
// "engines" says what was tested. Every Node that ran is inside it, and every line it names
// (^20.4.0 || ^22.0.0 || …) ran. Usage: engines.js <package.json> <version>…
const [file, ...ran] = process.argv.slice(2);
const engines = require(file).engines.node;
const ranges = engines.split('||').map((r) => /^\s*\^(\d+)\.(\d+)\.(\d+)\s*$/.exec(r));
if (ranges.some((m) => m === null)) throw new Error(`engines.node "${engines}": expected ^X.Y.Z || ^X.Y.Z …`);
for (const v of ran) {
  const [major, minor, patch] = v.replace(/^v/, '').split('.').map(Number);
  const inside = ranges.some(([, M, m, p]) => major === +M && (minor > +m || (minor === +m && patch >= +p)));
  if (!inside) throw new Error(`Node ${v} ran the package, but engines.node "${engines}" does not include it`);
}
for (const [, M] of ranges) {
  if (!ran.some((v) => v.startsWith(`v${M}.`))) throw new Error(`engines.node "${engines}" names Node ${M}, which did not run`);
}
console.log(`engines.node "${engines}": each line ran here (${ran.join(', ')})`);
