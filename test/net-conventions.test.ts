// The conventions of net.Server, for every model: the `signal` option, `await using`
// ([Symbol.asyncDispose]), ref()/unref() returning the server; and Node's `code` on every
// validation error. (unref() letting Node exit: unref.test.ts.)
import { MODELS, PosixServer, startServer } from '../lib';
import { runLoad } from '../lib/bench/loadgen';
import { startReference, type ReferenceModel } from '../lib/bench/reference';
import { exchange, optionsFor, port, snapshot } from './helpers';

describe.each(MODELS)('%s model', (model) => {
  // Lazily created Node internals (cluster's, libuv's) belong in the baseline.
  beforeAll(async () => {
    const warm = await startServer(optionsFor(model));
    await exchange(port(warm), Buffer.from('warm'));
    await warm.close();
  });

  test('aborting the signal closes the server, as close() does', async () => {
    const before = snapshot();
    const controller = new AbortController();
    const server = await startServer(optionsFor(model, { signal: controller.signal }));
    expect((await exchange(port(server), Buffer.from('before abort'))).toString()).toBe('before abort');
    const closed = new Promise<void>((resolve) => server.once('close', resolve));
    controller.abort();
    await closed;
    expect(server.listening).toBe(false);
    expect(server.address()).toBeNull();
    expect(server.stats()).toMatchObject({ accepted: 1, closed: 1, active: 0 });
    expect(snapshot()).toEqual(before);
  });

  test('an aborted signal: startServer rejects with an AbortError and starts nothing', async () => {
    const before = snapshot();
    const reason = new Error('not now');
    const started = startServer(optionsFor(model, { signal: AbortSignal.abort(reason) }));
    await expect(started).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    expect(snapshot()).toEqual(before);
  });

  test('aborted while starting: the server is closed again and startServer rejects with an AbortError', async () => {
    const before = snapshot();
    const controller = new AbortController();
    const started = startServer(optionsFor(model, { signal: controller.signal }));
    controller.abort();
    await expect(started).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(snapshot()).toEqual(before);
  });

  test('await using closes the server at the end of the block', async () => {
    const before = snapshot();
    let kept: PosixServer | undefined;
    {
      await using server = await startServer(optionsFor(model));
      kept = server;
      expect((await exchange(port(server), Buffer.from('in the block'))).toString()).toBe('in the block');
      expect(server.listening).toBe(true);
    }
    expect(kept.listening).toBe(false);
    expect(kept.address()).toBeNull();
    expect(kept.stats()).toMatchObject({ accepted: 1, closed: 1, active: 0 });
    expect(snapshot()).toEqual(before);
  });

  test('ref() and unref() return the server and change nothing else; also after close()', async () => {
    const server = await startServer(optionsFor(model));
    expect(server.unref()).toBe(server);
    expect((await exchange(port(server), Buffer.from('unref'))).toString()).toBe('unref');
    expect(server.ref()).toBe(server);
    await server.close();
    expect(server.unref()).toBe(server);
    expect(server.ref()).toBe(server);
  });
});

describe("validation errors carry Node's codes", () => {
  const thrown = (f: () => unknown): unknown => {
    try {
      f();
    } catch (e) {
      return e;
    }
    throw new Error('nothing was thrown');
  };

  test.each([
    ['options not an object', 'ERR_INVALID_ARG_TYPE', TypeError, () => startServer(null as never)],
    ['port not a number', 'ERR_INVALID_ARG_TYPE', TypeError, () => startServer({ model: 'fork', port: '80' as never })],
    ['port out of range', 'ERR_SOCKET_BAD_PORT', RangeError, () => startServer({ model: 'fork', port: 65536 })],
    ['port fractional', 'ERR_SOCKET_BAD_PORT', RangeError, () => startServer({ model: 'node', port: 1.5 })],
    ['unknown model', 'ERR_INVALID_ARG_VALUE', TypeError, () => startServer({ model: 'prethreaded' as never })],
    ['model not a string', 'ERR_INVALID_ARG_TYPE', TypeError, () => startServer({ model: 1 as never })],
    ['unknown option', 'ERR_INVALID_ARG_VALUE', TypeError, () => startServer({ model: 'fork', maxclients: 3 } as never)],
    [
      'host neither address nor name',
      'ERR_INVALID_ARG_VALUE',
      TypeError,
      () => startServer({ model: 'fork', host: '127.0.0.1:80' }),
    ],
    ['host not a string', 'ERR_INVALID_ARG_TYPE', TypeError, () => startServer({ model: 'fork', host: 127 as never })],
    ['maxClients out of range', 'ERR_OUT_OF_RANGE', RangeError, () => startServer({ model: 'thread', maxClients: 0 })],
    ['a lab switch for another model', 'ERR_INVALID_ARG_VALUE', TypeError, () => startServer({ model: 'node', reap: 'none' })],
    ['trace not a boolean', 'ERR_INVALID_ARG_TYPE', TypeError, () => startServer({ model: 'fork', trace: 1 as never })],
    ['signal not an AbortSignal', 'ERR_INVALID_ARG_TYPE', TypeError, () => startServer({ model: 'fork', signal: {} as never })],
    // Shaped like one, and not one: it could not be listened to and forgotten as a signal is.
    [
      'signal a look-alike',
      'ERR_INVALID_ARG_TYPE',
      TypeError,
      () => startServer({ model: 'thread', signal: { aborted: false, addEventListener() {} } as never }),
    ],
    ['load port 0', 'ERR_SOCKET_BAD_PORT', RangeError, () => runLoad({ mode: 'pingpong', port: 0 })],
    ['load connections', 'ERR_OUT_OF_RANGE', RangeError, () => runLoad({ mode: 'pingpong', port: 1, connections: 0 })],
  ] as const)('%s: %s', (_name, code, type, f) => {
    const e = thrown(f) as Error & { code?: string };
    expect(e).toBeInstanceOf(type);
    expect(e.code).toBe(code);
    // As Node prints its own: `TypeError [ERR_INVALID_ARG_TYPE]: The "port" option …`.
    expect(e.stack).toMatch(new RegExp(`^${type.name} \\[${code}\\]: ${e.message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  test('close() options, and the reference servers', async () => {
    const server = await startServer({ model: 'thread' });
    expect(thrown(() => server.close({ timeoutMs: -1 }))).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(thrown(() => server.close('soon' as never))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await server.close();
    await expect(startReference('select' as ReferenceModel)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(startReference('fork', { port: -1 })).rejects.toMatchObject({ code: 'ERR_SOCKET_BAD_PORT' });
  });
});
