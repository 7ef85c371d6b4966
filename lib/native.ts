// Loads the addon built by cmake-js (build/Release/posix_servers.node) and types it.
import bindings from 'bindings';
import type { Binding } from '../binding';

export const native: Binding = bindings('posix_servers');
