// The native limits, as constants of the package's API. Importing this module loads the addon
// (lib/addon.ts), so only the package's entry point does; options.ts reads them when it validates.
import { native } from '../addon';

/** The most live connections a server serves at once (the INFO table's largest size). */
export const MAX_CLIENTS_LIMIT: number = native.constants.MAX_CLIENTS_LIMIT;
/** The fork model's cap on maxClients (each connection is a process). */
export const FORK_MAX_CLIENTS_LIMIT: number = native.constants.FORK_MAX_CLIENTS_LIMIT;
/** Rules per allow/deny list of the door (native/core/door.h). */
export const MAX_DOOR_RULES: number = native.constants.MAX_DOOR_RULES;
