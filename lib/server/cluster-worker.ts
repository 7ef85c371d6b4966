// A node:cluster worker of model 'cluster'.
//
// rr: it never listens. The primary accepts, decides (maxClients) and sends each connection here;
// the worker serves it with the same handler as model 'node' and reports bytes and the end back.
//
// none: the primary sends the listening socket once; the worker accepts on it itself (so do the
// other workers: the kernel wakes them, one gets the client). Each accepted connection is held
// unread and reported to the primary, which alone knows how many are live across the pool: it
// admits it (with its id) or refuses it (maxClients), and the worker serves or closes it.
//
// When the primary goes away without disconnecting us (Node was killed), node:cluster's own
// 'disconnect' handler in the worker calls process.exit(): no orphans. A report written before
// the worker has read the channel's end fails with EPIPE, quietly (send()).
import { createServer, Server, Socket } from 'node:net';
import { FromWorker, JsServePolicy, ToWorker, WORKER_POLICY_ENV } from './cluster-protocol';
import { JsConnection, monotonicMs, peerOf } from './js-connection';

const policy = JSON.parse(process.env[WORKER_POLICY_ENV] ?? '{}') as JsServePolicy;
const live = new Map<number, JsConnection>();
/** Connection id → [bytesIn, bytesOut] not yet reported. */
const pending = new Map<number, [number, number]>();
/** none: connections accepted here (and when), waiting for the primary's verdict, by key. */
const awaiting = new Map<number, { socket: Socket; at: number }>();
let nextKey = 0;
let listener: Server | null = null;
/** close()'s timeout has passed: a connection admitted from now on is ended at once. */
let aborted = false;

// With a callback, a failed write is reported to it instead of as an 'error' event, which
// nothing here could handle: when Node is SIGKILLed the channel breaks under a write (EPIPE), and
// node:cluster's own 'disconnect' handler ends this worker a moment later. Nothing to say then.
function send(m: FromWorker): void {
  if (process.connected) process.send!(m, undefined, undefined, ignoreChannelError);
}

function ignoreChannelError(): void {}

function flushBytes(): void {
  if (pending.size === 0) return;
  send({ t: 'bytes', conns: [...pending].map(([id, [bytesIn, bytesOut]]) => [id, bytesIn, bytesOut]) });
  pending.clear();
}

// Unref'd: an idle worker that the primary disconnects must be free to exit.
setInterval(flushBytes, 100).unref();

// `at`: when the connection was accepted (its lifetime counts from then).
function serve(socket: Socket, id: number, at: number): void {
  if (socket.destroyed) {
    send({ t: 'closed', id, bytesIn: 0, bytesOut: 0, reason: 'error' });
    return;
  }
  const conn = new JsConnection(
    socket,
    policy,
    (end) => {
      live.delete(id);
      flushBytes();
      send({ t: 'closed', id, ...end });
    },
    (bytesIn, bytesOut) => {
      const p = pending.get(id);
      if (p) {
        p[0] += bytesIn;
        p[1] += bytesOut;
      } else {
        pending.set(id, [bytesIn, bytesOut]);
      }
    },
    at,
  );
  live.set(id, conn);
  if (aborted) conn.abort();
}

// none: `handle` is the primary's listening socket (a raw TCP handle): net.Server.listen(handle)
// calls listen() on it again (harmless) and accepts. pauseOnConnect: nothing is read before the
// primary's verdict.
function listenOn(handle: object, host: string): void {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    const key = ++nextKey;
    awaiting.set(key, { socket, at: monotonicMs() });
    send({ t: 'accepted', key, peer: peerOf(socket, host) });
  });
  server.on('error', (e: NodeJS.ErrnoException) => {
    if (typeof e.errno === 'number') send({ t: 'error', errno: -e.errno, syscall: e.syscall ?? 'accept' });
  });
  listener = server;
  server.listen(handle, () => send({ t: 'listening' }));
}

process.on('message', (msg: ToWorker, handle?: Socket | object) => {
  switch (msg.t) {
    case 'conn':
      if (handle instanceof Socket) serve(handle, msg.id, msg.at);
      else send({ t: 'closed', id: msg.id, bytesIn: 0, bytesOut: 0, reason: 'error' });
      break;
    case 'listen':
      if (handle !== undefined && listener === null) listenOn(handle, msg.host);
      break;
    case 'admit': {
      const held = awaiting.get(msg.key);
      awaiting.delete(msg.key);
      if (held === undefined) break;
      serve(held.socket, msg.id, held.at);
      held.socket.resume();
      break;
    }
    case 'refuse':
      awaiting.get(msg.key)?.socket.destroy();
      awaiting.delete(msg.key);
      break;
    case 'stop':
      // The descriptor is closed now (uv_close); connections already accepted go on.
      listener?.close();
      listener = null;
      send({ t: 'stopped' });
      break;
    case 'abort':
      aborted = true;
      for (const conn of live.values()) conn.abort();
      break;
  }
});

// The primary lets us go (cluster's graceful disconnect) only after our 'stopped'; should the
// channel close otherwise, the listener must not keep this process alive.
process.on('disconnect', () => {
  listener?.close();
  listener = null;
});

// Ctrl-C in a terminal signals the whole process group, workers included. The primary decides
// when a worker ends (graceful close, as for the fork master in its own group); a primary that
// dies of the SIGINT closes the IPC channel, and node:cluster ends the worker then.
process.on('SIGINT', () => undefined);

send({ t: 'ready' });
