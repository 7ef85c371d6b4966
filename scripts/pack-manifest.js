#!/usr/bin/env node
// The package.json that ships: prepack strips it to what runs in an installed package, postpack
// puts the developers' one back (package.json "prepack", "postpack"; npm pack and npm publish run
// both). An installed package has no tsconfig.json, test/, eslint or jest: of the scripts only
// "install" (scripts/install.js, shipped) can run there, so only it is kept; devDependencies stay
// (npm never installs them for a dependency, and they document what the tarball was built with).
//   node scripts/pack-manifest.js strip     the copy as it was goes to build-pack/package.json
//   node scripts/pack-manifest.js restore   and comes back
// A pack that failed between the two leaves the copy there: the next strip restores it first.
'use strict';
const { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const MANIFEST = join(ROOT, 'package.json');
const SAVED = join(ROOT, 'build-pack', 'package.json');
/** The scripts an installed package keeps. */
const KEEP = ['install'];

function restore() {
  if (!existsSync(SAVED)) return false;
  copyFileSync(SAVED, MANIFEST);
  rmSync(join(ROOT, 'build-pack'), { recursive: true, force: true });
  return true;
}

const what = process.argv[2];
if (what === 'strip') {
  if (restore()) process.stderr.write('pack-manifest: an earlier pack left package.json stripped; restored it first\n');
  const text = readFileSync(MANIFEST, 'utf8');
  const pkg = JSON.parse(text);
  mkdirSync(join(ROOT, 'build-pack'), { recursive: true });
  writeFileSync(SAVED, text);
  const dropped = Object.keys(pkg.scripts ?? {}).filter((name) => !KEEP.includes(name));
  pkg.scripts = Object.fromEntries(Object.entries(pkg.scripts ?? {}).filter(([name]) => KEEP.includes(name)));
  writeFileSync(MANIFEST, `${JSON.stringify(pkg, null, 2)}\n`);
  process.stdout.write(
    `pack-manifest: the packed package.json keeps the scripts ${KEEP.join(', ')}; drops ${dropped.join(', ')}\n`,
  );
} else if (what === 'restore') {
  if (!restore()) {
    process.stderr.write('pack-manifest: nothing to restore (no build-pack/package.json)\n');
    process.exit(1);
  }
} else {
  process.stderr.write('usage: node scripts/pack-manifest.js strip|restore\n');
  process.exit(2);
}
