// Loads the addon built by cmake-js (build/Release/posix_servers.node) and types it.
// POSIX_SERVERS_ADDON names another build of it instead (npm run test:asan loads the
// sanitizer build from build-asan/ this way).
import bindings from 'bindings';
import type { Binding } from './binding';

const override = process.env.POSIX_SERVERS_ADDON;

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: Binding = override ? require(override) : bindings('posix_servers');
