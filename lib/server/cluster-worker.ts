// A node:cluster worker of model 'cluster'. It never listens: the primary accepts, decides
// (maxClients) and sends each connection here; the worker serves it with the same handler as
// model 'node' and reports bytes and the end back.
//
// When the primary goes away without disconnecting us (Node was killed), node:cluster's own
// 'disconnect' handler in the worker calls process.exit(): no orphans, nothing to add here.
import type { Socket } from 'node:net';
import { FromWorker, JsServePolicy, ToWorker, WORKER_POLICY_ENV } from './cluster-protocol';
import { JsConnection } from './js-connection';

const policy = JSON.parse(process.env[WORKER_POLICY_ENV] ?? '{}') as JsServePolicy;
const live = new Map<number, JsConnection>();
/** Connection id → [bytesIn, bytesOut] not yet reported. */
const pending = new Map<number, [number, number]>();

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

function flushBytes(): void {
  if (pending.size === 0) return;
  send({ t: 'bytes', conns: [...pending].map(([id, [bytesIn, bytesOut]]) => [id, bytesIn, bytesOut]) });
  pending.clear();
}

// Unref'd: an idle worker that the primary disconnects must be free to exit.
setInterval(flushBytes, 100).unref();

process.on('message', (msg: ToWorker, handle?: Socket) => {
  if (msg.t === 'conn') {
    if (handle === undefined) {
      send({ t: 'closed', id: msg.id, bytesIn: 0, bytesOut: 0, reason: 'error' });
      return;
    }
    const conn = new JsConnection(
      handle,
      policy,
      (end) => {
        live.delete(msg.id);
        flushBytes();
        send({ t: 'closed', id: msg.id, ...end });
      },
      (bytesIn, bytesOut) => {
        const p = pending.get(msg.id);
        if (p) {
          p[0] += bytesIn;
          p[1] += bytesOut;
        } else {
          pending.set(msg.id, [bytesIn, bytesOut]);
        }
      },
    );
    live.set(msg.id, conn);
  } else if (msg.t === 'abort') {
    for (const conn of live.values()) conn.abort();
  }
});

// Ctrl-C in a terminal signals the whole process group, workers included. The primary decides
// when a worker ends (graceful close, as for the fork master in its own group); a primary that
// dies of the SIGINT closes the IPC channel, and node:cluster ends the worker then.
process.on('SIGINT', () => undefined);

send({ t: 'ready' });
