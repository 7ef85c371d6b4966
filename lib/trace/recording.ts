// A recording of what servers did: every trace record, and the connection, disconnect, reject and
// reap events, each stamped on the clock of the trace (CLOCK_MONOTONIC), kept per server. The
// picture (svg.ts) is drawn from it once the servers are closed; the live view (lib/ui) follows
// it as it grows. It only listens to events the server already delivers to JavaScript: recording
// adds nothing to a server's accept or data path.
import { EventEmitter } from 'node:events';
import type { ConnectionEvent, DisconnectEvent, ReapEvent, RejectEvent, TraceEvent } from '../server/events';
import type { Model, ServerOptions } from '../server/options';
import type { PosixServer } from '../server/server';

/**
 * Milliseconds on CLOCK_MONOTONIC, the clock the native servers stamp their trace records with
 * (libuv's hrtime reads the same clock), so that JS-side events and trace records line up.
 */
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export type RecordedEvent =
  | { type: 'connection'; timeMs: number; event: ConnectionEvent }
  | { type: 'disconnect'; timeMs: number; event: DisconnectEvent }
  | { type: 'reject'; timeMs: number; event: RejectEvent }
  | { type: 'reap'; timeMs: number; event: ReapEvent };

/** One server, from its start to its close. */
export interface RecordedServer {
  /** 1, 2, … in the order the servers were recorded. */
  index: number;
  model: Model;
  /** The options that change what the picture must show (lab switches). */
  reap: 'sigchld' | 'none';
  threadArg: 'slot' | 'shared-cfd';
  maxClients: number;
  /** The process that started it (Node), and server.pid (fork: the master). */
  nodePid: number;
  pid: number;
  port: number;
  startedMs: number;
  /** When close() settled; null while it runs. */
  closedMs: number | null;
  /** Every trace record, startupTrace first, in arrival order (native models only). */
  trace: TraceEvent[];
  events: RecordedEvent[];
}

interface RecorderEvents {
  /** A server was added (it is listening). */
  server: [RecordedServer];
  trace: [RecordedServer, TraceEvent];
  event: [RecordedServer, RecordedEvent];
  /** close() settled. */
  closed: [RecordedServer];
}

/** Collects RecordedServers; emits as they grow. */
export class Recorder extends EventEmitter<RecorderEvents> {
  readonly servers: RecordedServer[] = [];
  #live = new Map<RecordedServer, PosixServer>();

  /** The running server behind a recording (for its counters), until it has closed. */
  serverOf(rec: RecordedServer): PosixServer | undefined {
    return this.#live.get(rec);
  }

  /**
   * Records `server` from now on (its startupTrace included). `options` are those it was started
   * with, for the lab switches. Call it right after startServer() resolved.
   */
  attach(server: PosixServer, options: Partial<ServerOptions> = {}): RecordedServer {
    const address = server.address();
    const rec: RecordedServer = {
      index: this.servers.length + 1,
      model: server.model,
      reap: options.reap ?? 'sigchld',
      threadArg: options.threadArg ?? 'slot',
      maxClients: options.maxClients ?? 100,
      nodePid: process.pid,
      pid: server.pid,
      port: address?.port ?? 0,
      startedMs: server.startupTrace[0]?.timeMs ?? monotonicMs(),
      closedMs: null,
      trace: [...server.startupTrace],
      events: [],
    };
    this.servers.push(rec);
    this.#live.set(rec, server);
    const add = (e: RecordedEvent) => {
      rec.events.push(e);
      this.emit('event', rec, e);
    };
    server.on('trace', (t) => {
      rec.trace.push(t);
      this.emit('trace', rec, t);
    });
    server.on('connection', (event) => add({ type: 'connection', timeMs: monotonicMs(), event }));
    server.on('disconnect', (event) => add({ type: 'disconnect', timeMs: monotonicMs(), event }));
    server.on('reject', (event) => add({ type: 'reject', timeMs: monotonicMs(), event }));
    server.on('reap', (event) => add({ type: 'reap', timeMs: monotonicMs(), event }));
    server.once('close', () => {
      rec.closedMs = monotonicMs();
      this.emit('closed', rec);
      this.#live.delete(rec);
    });
    this.emit('server', rec);
    return rec;
  }
}
