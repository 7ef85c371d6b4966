// model 'node': Node's own net.Server, in this process, behind the same Backend as the native
// models. libuv does socket/bind/listen/accept on Node's event loop (strace shows accept4 from
// the main thread); one process, one thread serves every client. `reaped` stays 0: no children.
import type { Socket } from 'node:net';
import type { Backend, EventSink } from './backend';
import type { Peer, RejectReason } from './events';
import { JsConnection, jsServePolicy } from './js-connection';
import { NetListenerBackend } from './net-listener-backend';
import type { ResolvedOptions } from './options';

class NodeBackend extends NetListenerBackend {
  #live = new Map<number, JsConnection>();
  #policy: ReturnType<typeof jsServePolicy>;

  constructor(opts: ResolvedOptions, sink: EventSink) {
    const policy = jsServePolicy(opts);
    super(opts, sink, 'accept');
    this.#policy = policy;
  }

  protected onListening(): void {
    this.sink({ type: 'listening' });
  }

  protected refusal(): RejectReason | null {
    return this.#live.size >= this.opts.maxClients ? 'max-clients' : null;
  }

  protected serve(socket: Socket, id: number, peer: Peer): void {
    this.sink({ type: 'connection', event: { id, peer } });
    const conn = new JsConnection(
      socket,
      this.#policy,
      (end) => {
        this.#live.delete(id);
        this.ended({ id, ...end });
        this.checkFinished();
      },
      (bytesIn, bytesOut) => {
        this.counters.bytesIn += bytesIn;
        this.counters.bytesOut += bytesOut;
      },
    );
    this.#live.set(id, conn);
  }

  protected drained(): boolean {
    return this.#live.size === 0;
  }

  abortConnections(): void {
    for (const conn of this.#live.values()) conn.abort();
  }

  kill(): void {
    this.abortConnections();
  }
}

export function startNodeBackend(opts: ResolvedOptions, sink: EventSink): Backend {
  return new NodeBackend(opts, sink);
}
