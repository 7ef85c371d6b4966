// The native addon (native/addon.cc), typed by binding.ts, loaded on first use: importing the
// package's modules loads nothing, so that `posix-servers --help` and `--version` work where the
// addon cannot load.
//
// Found by `bindings`: first a local build (build/Release, made by `npm install` in a checkout, by
// `npm run build`, or by the install script's compile fallback), then the prebuilt addon the
// package carries (prebuilds/<platform>-<arch>/, scripts/native-files.js) — which is also how an
// install with --ignore-scripts works. POSIX_SERVERS_ADDON names another build instead (npm run
// test:asan and test:tsan load their sanitizer builds, build-asan/ and build-tsan/, this way).
import bindings from 'bindings';
import { basename, dirname, relative, sep } from 'node:path';
import type { Binding } from './binding';
import { BUILD_DIR, NATIVE_FILES, PACKAGE_ROOT, PREBUILD_DIR } from './paths';

function load(): Binding {
  const override = process.env.POSIX_SERVERS_ADDON;
  const { ADDON, GLIBC_FLOOR } = NATIVE_FILES;
  // `bindings` joins each entry's parts, reading 'module_root' and 'bindings' from its options.
  const below = (dir: string) => relative(PACKAGE_ROOT, dir).split(sep);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    if (override) return require(override);
    return bindings({
      bindings: basename(ADDON.ship),
      module_root: PACKAGE_ROOT,
      try: [
        ['module_root', ...below(BUILD_DIR), dirname(ADDON.build), 'bindings'],
        ['module_root', ...below(PREBUILD_DIR), 'bindings'],
      ],
    }) as Binding;
  } catch (e) {
    // The first line says why (bindings lists where it looked: that list is `tries`).
    const { message, tries } = e as Error & { tries?: string[] };
    const why = tries ? `not found in ${tries.join(', ')}` : message.split('\n')[0];
    throw new Error(
      `the native addon of posix-servers could not be loaded: ${why}. The prebuilt one needs Linux x64 or arm64 with ` +
        `glibc ${GLIBC_FLOOR} or newer; elsewhere the install compiles it (with cmake, g++ and make): ` +
        `\`npm rebuild posix-servers\` tries again.`,
      { cause: e },
    );
  }
}

let loaded: Binding | undefined;

/** The addon: loaded by the first property read, then the same object every time. */
export const native: Binding = new Proxy({} as Binding, {
  get: (_target, key) => Reflect.get((loaded ??= load()), key),
});
