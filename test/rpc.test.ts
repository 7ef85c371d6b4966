// The rpc handler (UNP ch. 30's Web-style exchange) in every model and variant: the client sends
// "N\n", the server sends the first N bytes of chargen's stream and closes. Sizes 0, 1, 4000 and
// the largest allowed; a request in pieces; malformed requests (closed without a reply, reason
// 'error'); clients that leave early. Real sockets; the books and the disconnect events checked.
import { DisconnectEvent, MODELS, PosixServer, RPC_MAX_REPLY, RPC_MAX_REQUEST, startServer } from '../lib';
import { chargenPrefix, Client, optionsFor, port, sleep, Variant, waitFor, withVariants } from './helpers';

function expectBooks(server: PosixServer): void {
  const s = server.stats();
  expect(s.accepted).toBe(s.closed + s.rejected + s.active);
}

/** Sends `request` (in the pieces given, 20 ms apart), reads until the server closes; returns what came. */
async function ask(p: number, ...pieces: string[]): Promise<{ reply: Buffer; reset: boolean }> {
  const c = await Client.open(p);
  try {
    for (const [i, piece] of pieces.entries()) {
      if (i > 0) await sleep(20);
      c.sock.write(piece);
    }
    await c.closedByPeer(10000);
    const code = (c.error as NodeJS.ErrnoException | null)?.code;
    return { reply: c.take(), reset: code === 'ECONNRESET' };
  } finally {
    c.destroy();
  }
}

const CASES: Variant[] = [...withVariants(MODELS), ['prefork (acceptLock pass)', 'prefork', { acceptLock: 'pass' }]];

describe.each(CASES)('%s: the rpc handler', (_label, model, extra) => {
  let server: PosixServer | undefined;
  let disconnects: DisconnectEvent[] = [];
  beforeEach(async () => {
    server = await startServer(optionsFor(model, { ...extra, handler: 'rpc' }));
    disconnects = [];
    server.on('disconnect', (d) => disconnects.push(d));
  });
  afterEach(async () => {
    await server?.close({ timeoutMs: 0 });
    server = undefined;
  });

  test.each([0, 1, 4000, RPC_MAX_REPLY])(
    'asked for %i bytes: exactly that much of chargen, then the server closes',
    async (n) => {
      const request = `${n}\n`;
      const { reply } = await ask(port(server!), request);
      expect(reply.length).toBe(n);
      expect(reply.equals(chargenPrefix(n))).toBe(true);
      await waitFor(() => disconnects.length === 1, 5000, 'the disconnect');
      expect(disconnects[0]).toMatchObject({ reason: 'end', bytesIn: request.length, bytesOut: n });
      expectBooks(server!);
    },
  );

  test('a request in pieces, and with leading zeros, is answered once whole', async () => {
    const { reply } = await ask(port(server!), '00', '40', '00\n');
    expect(reply.equals(chargenPrefix(4000))).toBe(true);
    await waitFor(() => disconnects.length === 1, 5000, 'the disconnect');
    expect(disconnects[0]).toMatchObject({ reason: 'end', bytesIn: 7, bytesOut: 4000 });
  });

  test.each([
    ['not a number', 'abc\n'],
    ['no digits', '\n'],
    ['a sign', '-1\n'],
    ['a space', ' 5\n'],
    ['CR LF', '5\r\n'],
    ['more digits than allowed', `${'1'.repeat(RPC_MAX_REQUEST)}\n`],
    ['a size over the maximum', `${RPC_MAX_REPLY + 1}\n`],
    ['bytes after the newline', '5\nX'],
  ])('malformed (%s): closed without a reply, reason error', async (_what, request) => {
    const { reply } = await ask(port(server!), request);
    expect(reply.length).toBe(0);
    await waitFor(() => disconnects.length === 1, 5000, 'the disconnect');
    expect(disconnects[0]).toMatchObject({ reason: 'error', bytesOut: 0 });
    expect(disconnects[0].bytesIn).toBeGreaterThan(0);
    expect(disconnects[0].bytesIn).toBeLessThanOrEqual(RPC_MAX_REQUEST);
    expectBooks(server!);
    // The server goes on serving.
    expect((await ask(port(server!), '10\n')).reply.equals(chargenPrefix(10))).toBe(true);
  });

  test('a client that leaves mid-request is an error; one that asks nothing has simply ended', async () => {
    const half = await Client.open(port(server!));
    half.sock.write('40');
    await sleep(20);
    half.end();
    await half.closedByPeer(5000);
    expect(half.received).toBe(0);
    half.destroy();
    const silent = await Client.open(port(server!));
    silent.end();
    await silent.closedByPeer(5000);
    silent.destroy();
    await waitFor(() => disconnects.length === 2, 5000, 'both disconnects');
    expect(disconnects.map((d) => d.reason).sort()).toEqual(['end', 'error']);
    expect(disconnects.find((d) => d.reason === 'error')!.bytesIn).toBe(2);
    expect(disconnects.find((d) => d.reason === 'end')!.bytesIn).toBe(0);
    expectBooks(server!);
  });

  // Loopback's socket buffers (the sender's grows to tcp_wmem's 4 MiB) may take the whole reply
  // before the reset arrives: then the server has ended normally. Either way it says which, and
  // its byte count agrees.
  test('a client that stops reading and resets mid-reply: one disconnect that tells how far it got; the next client is served', async () => {
    const c = await Client.open(port(server!));
    c.sock.write(`${RPC_MAX_REPLY}\n`);
    await c.read(1000, 5000); // the reply has begun
    c.sock.pause(); // read no more: the server's send blocks (or would block) with most of it unsent
    await sleep(100);
    c.sock.resetAndDestroy();
    await waitFor(() => disconnects.length === 1, 10000, 'the disconnect');
    const d = disconnects[0];
    expect(['end', 'error']).toContain(d.reason);
    if (d.reason === 'end') expect(d.bytesOut).toBe(RPC_MAX_REPLY);
    else expect(d.bytesOut).toBeLessThan(RPC_MAX_REPLY);
    expect(d.bytesOut).toBeGreaterThanOrEqual(1000);
    expect((await ask(port(server!), '4000\n')).reply.equals(chargenPrefix(4000))).toBe(true);
    await waitFor(() => disconnects.length === 2, 5000, 'the second disconnect');
    expectBooks(server!);
  });
});

describe.each(['fork', 'thread', 'prefork', 'reuseport', 'prethread'] as const)(
  '%s model: labCrash with the rpc handler',
  (model) => {
    test('the request CRASH\\n crashes the serving child/worker (reported), and the next request is answered', async () => {
      const server = await startServer(optionsFor(model, { handler: 'rpc', labCrash: true, maxClients: 1 }));
      try {
        const gone: DisconnectEvent[] = [];
        server.on('disconnect', (d) => gone.push(d));
        const { reply } = await ask(port(server), 'CRASH\n');
        expect(reply.length).toBe(0);
        await waitFor(() => gone.length === 1, 5000, 'the disconnect');
        expect(gone[0].reason).toBe('crash');
        // maxClients is 1: the crashed connection's place was freed.
        expect((await ask(port(server), '100\n')).reply.equals(chargenPrefix(100))).toBe(true);
        await waitFor(() => gone.length === 2, 5000, 'the second disconnect');
        expect(gone[1].reason).toBe('end');
        expectBooks(server);
      } finally {
        await server.close({ timeoutMs: 0 });
      }
    });
  },
);
