// The native files of posix-servers, in one list: where a cmake-js build puts each one (below
// build/) and where the package carries it prebuilt (below prebuilds/<platform>-<arch>/).
// scripts/prebuild.js copies and checks them, scripts/install.js tries them, lib/ finds them
// (lib/paths.ts), scripts/check-package.sh checks that the tarball has them. Renaming a program
// is a one-line change here (besides its CMake target and the C++ that names it).
//
// The addon and the master program (of the fork, prefork and reuseport models) sit side by side:
// the addon finds the master next to itself (dladdr, native/core/designs/fork_server.cc). The load
// generator is part of the addon.
'use strict';

/** The addon: `bindings` looks for this name. */
const ADDON = { build: 'Release/posix_servers.node', ship: 'posix_servers.node' };
/** The process models' master program (fork, prefork, reuseport), exec'd by the addon. */
const MASTER = { build: 'Release/posix-servers-master', ship: 'posix-servers-master' };
/**
 * The C reference servers of `posix-servers bench` (ref/*.c), one per design. ref-uring is built
 * only where liburing links for the target (CMakeLists.txt): `optional`, a prebuild and an install
 * do without it (bench then skips it and says why).
 */
const REFERENCES = ['iterative', 'fork', 'thread', 'epoll', 'uring', 'prefork', 'reuseport', 'prethread'].map((model) => ({
  model,
  build: `ref/ref-${model}`,
  ship: `ref/ref-${model}`,
  ...(model === 'uring' ? { optional: true } : {}),
}));

/** The labs' own C servers (native/labs/*.c): `posix-servers lab nonblocking`, `lab mmap`,
 * `lab thundering-herd` and `lab accept-balance` (herd), and the five traps' (`lab time-wait`, …, and
 * read-client, the client of `lab lingering-close`). */
const LAB_PROGRAMS = [
  'nonblocking',
  'mmap',
  'herd',
  'time-wait',
  'backlog',
  'sigpipe',
  'nagle',
  'lingering-close',
  'read-client',
].map((name) => ({
  name,
  build: `labs/lab-${name}`,
  ship: `labs/lab-${name}`,
}));

module.exports = {
  ADDON,
  MASTER,
  REFERENCES,
  LAB_PROGRAMS,
  /** Every file a prebuild carries. */
  FILES: [ADDON, MASTER, ...REFERENCES, ...LAB_PROGRAMS],
  /** Where the package carries the prebuilt files, below its root. */
  PREBUILDS: 'prebuilds',
  /** The prebuild directory's name for a platform: 'linux-x64'. */
  platformDir: (platform = process.platform, arch = process.arch) => `${platform}-${arch}`,
  /**
   * The oldest glibc a prebuilt binary may need: glibc's _Fork() (fork without the atfork
   * handlers) appeared in 2.34. scripts/prebuild.js refuses a binary that needs a newer one.
   */
  GLIBC_FLOOR: '2.34',
};
