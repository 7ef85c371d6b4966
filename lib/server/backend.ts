// What PosixServer needs from a running server, whatever runs it: the native models (fork,
// thread, iterative, prethread, epoll, in native-backend.ts) and Node's own servers for comparison.
import type { NativeStats } from '../binding';
import type { ConnectionEvent, DisconnectEvent, ReapEvent, RejectEvent, TraceEvent } from './events';

export type ServerStats = NativeStats;

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** Events as a backend reports them, in the order they happened. */
export type ServerEvent =
  | { type: 'listening' }
  | { type: 'connection'; event: ConnectionEvent }
  | { type: 'disconnect'; event: DisconnectEvent }
  | { type: 'reject'; event: RejectEvent }
  | { type: 'reap'; event: ReapEvent }
  | { type: 'trace'; event: TraceEvent }
  | { type: 'error'; error: Error };

export type EventSink = (ev: ServerEvent) => void;

export interface Backend {
  /** The process that accepts: the fork master, or this process. */
  readonly pid: number;
  address(): AddressInfo;
  stats(): ServerStats;
  /** Stop accepting now; the listening socket is closed. Idempotent. */
  stop(): void;
  /** End the connections still being served (close()'s timeout has passed). */
  abortConnections(): void;
  /** Last resort when a server does not finish after abortConnections(). */
  kill(): void;
  /**
   * Settles once every process, thread and descriptor of the server is gone and every event has
   * been passed to the sink — after stop(), or on its own when the server died.
   */
  readonly finished: Promise<void>;
  /** Called once after `finished`: release what is left (join threads, free memory). */
  release(): void;
  /**
   * server.ref()/unref(): whether what this server holds in Node's event loop (handles, timers,
   * thread-safe functions) keeps the loop alive. Until `finished`.
   */
  setRef(ref: boolean): void;
  /**
   * Whether anyone listens to 'connection' or 'disconnect' (true until told otherwise). While
   * nobody does, the native models write neither record of a connection they accept — the two
   * records were a twentieth of a pool member's CPU under churn, and all the hosting Node did per
   * connection — and they write both or neither for any one connection. Node's own models emit
   * what they have anyway.
   */
  hearConnections?(heard: boolean): void;
}
