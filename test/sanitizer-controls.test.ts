// The positive controls of the sanitizer suites (native/core/sanitizer_controls.h) are planted bugs:
// they must exist only in the sanitizer builds (CMake's PS_SANITIZE). The ordinary build — the one
// `npm install` makes, and the prebuilt binaries are made the same way — holds no trace of them,
// and the switch that runs them does nothing there.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_DIR, NATIVE_FILES, PREBUILD_DIR } from '../lib/paths';

const SWITCH = 'POSIX_SERVERS_SANITIZER_CONTROL';
const CONTROLS = ['heap-overflow', 'signed-overflow', 'race'];

// The ordinary build, and the prebuilt binaries when this checkout has made them (npm pack).
const builds = [
  { where: 'build/', addon: join(BUILD_DIR, NATIVE_FILES.ADDON.build), master: join(BUILD_DIR, NATIVE_FILES.MASTER.build) },
  {
    where: 'prebuilds/',
    addon: join(PREBUILD_DIR, NATIVE_FILES.ADDON.ship),
    master: join(PREBUILD_DIR, NATIVE_FILES.MASTER.ship),
  },
].filter((b) => b.where === 'build/' || existsSync(b.addon));

describe.each(builds)('the binaries of $where', ({ addon, master }) => {
  test('contain neither the switch nor the planted bugs', () => {
    for (const file of [addon, master]) {
      const bytes = readFileSync(file);
      expect(bytes.includes(SWITCH)).toBe(false);
      expect(bytes.includes('sanitizer control:')).toBe(false);
      expect(bytes.includes('run_sanitizer_control')).toBe(false);
    }
  });

  test.each(CONTROLS)('with %s asked for, the addon loads and the master starts as always', (name) => {
    const env = { ...process.env, [SWITCH]: name };
    const loaded = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)}); console.log('loaded')`], {
      env,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(loaded.stderr).toBe('');
    expect(loaded.stdout).toBe('loaded\n');
    expect(loaded.status).toBe(0);
    // Run by hand, the master refuses its empty command line: its first words, and nothing else.
    const started = spawnSync(master, [], { env, encoding: 'utf8', timeout: 20_000 });
    expect(started.stderr).toMatch(/^posix-servers-master: bad .* \(this program is started by posix-servers\)\n$/);
    expect(started.status).toBe(2);
  });
});
