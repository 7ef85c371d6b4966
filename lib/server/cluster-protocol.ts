// The messages between the cluster primary (cluster-backend.ts) and its workers
// (cluster-worker.ts), over the IPC channel node:cluster sets up. A connection travels as the
// handle of a 'conn' message (SCM_RIGHTS underneath, as cluster's own round-robin does).
import type { DisconnectReason } from './events';
import type { JsServePolicy } from './js-connection';

/** The environment variable that carries the worker's JsServePolicy as JSON. */
export const WORKER_POLICY_ENV = 'POSIX_SERVERS_WORKER_POLICY';

export type ToWorker =
  /** Serve the socket sent with this message as connection `id`. */
  | { t: 'conn'; id: number }
  /** close()'s timeout has passed: end every connection now. */
  | { t: 'abort' };

export type FromWorker =
  /** The worker listens for 'conn' messages. */
  | { t: 'ready' }
  /**
   * Bytes read and written since the last report, per connection: [id, bytesIn, bytesOut] (sent at
   * most every 100 ms, and before 'closed'). Per connection, so that when a worker dies the
   * primary reports each of its connections with the bytes it counted for it.
   */
  | { t: 'bytes'; conns: Array<[number, number, number]> }
  /** Connection `id` has ended. */
  | { t: 'closed'; id: number; bytesIn: number; bytesOut: number; reason: DisconnectReason };

export type { JsServePolicy };
