// The messages between the cluster primary (cluster-backend.ts) and its workers
// (cluster-worker.ts), over the IPC channel node:cluster sets up. A connection travels as the
// handle of a 'conn' message (SCM_RIGHTS underneath, as cluster's own round-robin does); with
// schedulingPolicy 'none' the listening socket travels once, as the handle of 'listen', and each
// worker accepts on it itself.
import type { DisconnectReason, Peer } from './events';
import type { JsServePolicy } from './js-connection';

/** The environment variable that carries the worker's JsServePolicy as JSON. */
export const WORKER_POLICY_ENV = 'POSIX_SERVERS_WORKER_POLICY';

export type ToWorker =
  /**
   * rr: serve the socket sent with this message as connection `id`, accepted by the primary at
   * `at` (CLOCK_MONOTONIC, ms: js-connection.ts's monotonicMs()).
   */
  | { t: 'conn'; id: number; at: number }
  /** none: accept on the listening socket sent with this message (bound to `host`). */
  | { t: 'listen'; host: string }
  /** none: the connection the worker reported as `key` is admitted as connection `id`: serve it. */
  | { t: 'admit'; key: number; id: number }
  /** none: the connection the worker reported as `key` is refused (maxClients): close it. */
  | { t: 'refuse'; key: number }
  /** none: close the listening socket (the server is closing). */
  | { t: 'stop' }
  /** close()'s timeout has passed: end every connection now. */
  | { t: 'abort' };

export type FromWorker =
  /** The worker listens for messages (rr: for 'conn'; none: for 'listen'). */
  | { t: 'ready' }
  /** none: the worker accepts on the shared socket. */
  | { t: 'listening' }
  /**
   * none: the worker accepted a connection; it holds it unread (`key`: the worker's own number)
   * until the primary admits or refuses it.
   */
  | { t: 'accepted'; key: number; peer: Peer }
  /** none: the worker's copy of the listening socket is closed; it accepts nothing more. */
  | { t: 'stopped' }
  /** none: accept() failed in the worker (net.Server 'error'). */
  | { t: 'error'; errno: number; syscall: string }
  /**
   * Bytes read and written since the last report, per connection: [id, bytesIn, bytesOut] (sent at
   * most every 100 ms, and before 'closed'). Per connection, so that when a worker dies the
   * primary reports each of its connections with the bytes it counted for it.
   */
  | { t: 'bytes'; conns: Array<[number, number, number]> }
  /** Connection `id` has ended. */
  | { t: 'closed'; id: number; bytesIn: number; bytesOut: number; reason: DisconnectReason };

export type { JsServePolicy };
