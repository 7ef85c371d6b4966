// Bad input gets a TypeError or RangeError naming the option and the value, with Node's code for
// the mistake, and creates nothing.
import { availableParallelism } from 'node:os';
import { MAX_CLIENTS_LIMIT, MAX_WORKERS, startServer } from '../lib';
import { native } from '../lib/addon';
import { resolveOptions } from '../lib/server/options';
import { snapshot } from './helpers';

// name, Node's code for the mistake, options, the error's type, its message.
type Case = [string, string, unknown, ErrorConstructor, RegExp];

const cases: Case[] = [
  ['options missing', 'ERR_INVALID_ARG_TYPE', undefined, TypeError, /"options" argument must be an object\. Received undefined/],
  ['options not an object', 'ERR_INVALID_ARG_TYPE', 'fork', TypeError, /"options" argument must be an object\. Received 'fork'/],
  [
    'unknown model',
    'ERR_INVALID_ARG_VALUE',
    { model: 'prethreaded' },
    TypeError,
    /"model" option must be one of 'fork', 'thread', 'iterative', 'prefork', 'reuseport', 'prethread', 'epoll', 'node', 'cluster'\. Received 'prethreaded'/,
  ],
  ['model missing', 'ERR_INVALID_ARG_TYPE', {}, TypeError, /"model" option .* Received undefined/],
  ['unknown option', 'ERR_INVALID_ARG_VALUE', { model: 'fork', maxclients: 3 }, TypeError, /Unknown option "maxclients"/],
  [
    'host name, not an address',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', host: 'localhost' },
    TypeError,
    /"host" option must be a numeric IPv4 or IPv6 address\. Received 'localhost'/,
  ],
  ['host not a string', 'ERR_INVALID_ARG_TYPE', { model: 'fork', host: 127 }, TypeError, /"host" option .* Received 127/],
  [
    'port not a number',
    'ERR_INVALID_ARG_TYPE',
    { model: 'thread', port: '80' },
    TypeError,
    /"port" option must be a number\. Received '80'/,
  ],
  [
    'port negative',
    'ERR_SOCKET_BAD_PORT',
    { model: 'thread', port: -1 },
    RangeError,
    /"port" option must be an integer from 0 to 65535\. Received -1/,
  ],
  ['port too large', 'ERR_SOCKET_BAD_PORT', { model: 'thread', port: 65536 }, RangeError, /"port" .* Received 65536/],
  ['port fractional', 'ERR_SOCKET_BAD_PORT', { model: 'thread', port: 80.5 }, RangeError, /"port" .* Received 80\.5/],
  [
    'backlog zero',
    'ERR_OUT_OF_RANGE',
    { model: 'fork', backlog: 0 },
    RangeError,
    /"backlog" option must be an integer from 1 to 65535\. Received 0/,
  ],
  [
    'maxClients zero',
    'ERR_OUT_OF_RANGE',
    { model: 'thread', maxClients: 0 },
    RangeError,
    /"maxClients" option must be an integer from 1 to 4096\. Received 0/,
  ],
  [
    'fork maxClients over the fork cap',
    'ERR_OUT_OF_RANGE',
    { model: 'fork', maxClients: 1025 },
    RangeError,
    /"maxClients" option must be an integer from 1 to 1024\. Received 1025/,
  ],
  [
    'idleTimeoutMs negative',
    'ERR_OUT_OF_RANGE',
    { model: 'fork', idleTimeoutMs: -1 },
    RangeError,
    /"idleTimeoutMs" .* Received -1/,
  ],
  [
    'maxConnectionMs negative',
    'ERR_OUT_OF_RANGE',
    { model: 'thread', maxConnectionMs: -1 },
    RangeError,
    /"maxConnectionMs" option must be an integer from 0 to 2147483647\. Received -1/,
  ],
  [
    'minBytesPerSecond not a number',
    'ERR_INVALID_ARG_TYPE',
    { model: 'node', minBytesPerSecond: '1k' },
    TypeError,
    /"minBytesPerSecond" option must be a number\. Received '1k'/,
  ],
  [
    'minBytesPerSecond fractional',
    'ERR_OUT_OF_RANGE',
    { model: 'iterative', minBytesPerSecond: 0.5 },
    RangeError,
    /"minBytesPerSecond" .* Received 0\.5/,
  ],
  [
    'rateWindowMs without minBytesPerSecond',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', rateWindowMs: 500 },
    TypeError,
    /"rateWindowMs" option applies only with a "minBytesPerSecond" above 0\. Received 500/,
  ],
  [
    'rateWindowMs too short',
    'ERR_OUT_OF_RANGE',
    { model: 'cluster', minBytesPerSecond: 10, rateWindowMs: 50 },
    RangeError,
    /"rateWindowMs" option must be an integer from 100 to 2147483647\. Received 50/,
  ],
  [
    'a zone on an IPv4 address',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', host: '127.0.0.1%lo' },
    TypeError,
    /"host" option must be a numeric IPv4 or IPv6 address\. Received '127\.0\.0\.1%lo'/,
  ],
  [
    'labCrash for iterative',
    'ERR_INVALID_ARG_VALUE',
    { model: 'iterative', labCrash: true },
    TypeError,
    /"labCrash" option applies only to the fork, thread, prefork, reuseport and prethread models\. Received it for model 'iterative'/,
  ],
  [
    'maxClients over the limit',
    'ERR_OUT_OF_RANGE',
    { model: 'thread', maxClients: 4097 },
    RangeError,
    /"maxClients" .* Received 4097/,
  ],
  ['maxClients NaN', 'ERR_OUT_OF_RANGE', { model: 'thread', maxClients: NaN }, RangeError, /"maxClients" .* Received NaN/],
  [
    'workers for a model without a pool',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', workers: 2 },
    TypeError,
    /"workers" option applies only to the cluster, prefork, reuseport and prethread models\. Received it for model 'fork'/,
  ],
  [
    'workers for epoll',
    'ERR_INVALID_ARG_VALUE',
    { model: 'epoll', workers: 2 },
    TypeError,
    /"workers" option applies only to .* Received it for model 'epoll'/,
  ],
  [
    'prethread workers over the cap',
    'ERR_OUT_OF_RANGE',
    { model: 'prethread', workers: 65 },
    RangeError,
    /"workers" option must be an integer from 1 to 64\. Received 65/,
  ],
  [
    'acceptLock for cluster',
    'ERR_INVALID_ARG_VALUE',
    { model: 'cluster', acceptLock: 'main' },
    TypeError,
    /"acceptLock" option applies only to the prefork and prethread models\. Received it for model 'cluster'/,
  ],
  [
    'a prefork acceptLock for prethread',
    'ERR_INVALID_ARG_VALUE',
    { model: 'prethread', acceptLock: 'flock' },
    TypeError,
    /"acceptLock" option must be one of 'mutex', 'main'\. Received 'flock'/,
  ],
  [
    'a prethread acceptLock for prefork',
    'ERR_INVALID_ARG_VALUE',
    { model: 'prefork', acceptLock: 'main' },
    TypeError,
    /"acceptLock" option must be one of 'none', 'flock', 'mutex', 'pass'\. Received 'main'/,
  ],
  [
    'schedulingPolicy for prethread',
    'ERR_INVALID_ARG_VALUE',
    { model: 'prethread', schedulingPolicy: 'rr' },
    TypeError,
    /"schedulingPolicy" option applies only to the cluster model\. Received it for model 'prethread'/,
  ],
  [
    'unknown schedulingPolicy',
    'ERR_INVALID_ARG_VALUE',
    { model: 'cluster', schedulingPolicy: 'random' },
    TypeError,
    /"schedulingPolicy" option must be one of 'rr', 'none'\. Received 'random'/,
  ],
  [
    'labCrash for epoll',
    'ERR_INVALID_ARG_VALUE',
    { model: 'epoll', labCrash: true },
    TypeError,
    /"labCrash" option does not apply to the epoll model/,
  ],
  [
    'threadArg for prethread',
    'ERR_INVALID_ARG_VALUE',
    { model: 'prethread', threadArg: 'shared-cfd' },
    TypeError,
    /"threadArg" option applies only to the thread model\. Received it for model 'prethread'/,
  ],
  [
    'workers for thread',
    'ERR_INVALID_ARG_VALUE',
    { model: 'thread', workers: 2 },
    TypeError,
    /"workers" option applies only to .* model 'thread'/,
  ],
  [
    'prefork workers zero',
    'ERR_OUT_OF_RANGE',
    { model: 'prefork', workers: 0 },
    RangeError,
    /"workers" option must be an integer from 1 to 64\. Received 0/,
  ],
  [
    'reuseport workers over the cap',
    'ERR_OUT_OF_RANGE',
    { model: 'reuseport', workers: 65 },
    RangeError,
    /"workers" .* Received 65/,
  ],
  [
    'acceptLock for thread',
    'ERR_INVALID_ARG_VALUE',
    { model: 'thread', acceptLock: 'mutex' },
    TypeError,
    /"acceptLock" option applies only to the prefork and prethread models\. Received it for model 'thread'/,
  ],
  [
    'acceptLock for reuseport',
    'ERR_INVALID_ARG_VALUE',
    { model: 'reuseport', acceptLock: 'none' },
    TypeError,
    /"acceptLock" option applies only to the prefork and prethread models\. Received it for model 'reuseport'/,
  ],
  [
    'unknown acceptLock',
    'ERR_INVALID_ARG_VALUE',
    { model: 'prefork', acceptLock: 'semaphore' },
    TypeError,
    /"acceptLock" option must be one of 'none', 'flock', 'mutex', 'pass'\. Received 'semaphore'/,
  ],
  [
    'reap for prefork',
    'ERR_INVALID_ARG_VALUE',
    { model: 'prefork', reap: 'none' },
    TypeError,
    /"reap" option applies only to the fork model\. Received it for model 'prefork'/,
  ],
  [
    'threadArg for reuseport',
    'ERR_INVALID_ARG_VALUE',
    { model: 'reuseport', threadArg: 'shared-cfd' },
    TypeError,
    /"threadArg" option applies only to the thread model\. Received it for model 'reuseport'/,
  ],
  [
    'workers zero',
    'ERR_OUT_OF_RANGE',
    { model: 'cluster', workers: 0 },
    RangeError,
    /"workers" option must be an integer from 1 to 64\. Received 0/,
  ],
  ['workers over the cap', 'ERR_OUT_OF_RANGE', { model: 'cluster', workers: 65 }, RangeError, /"workers" .* Received 65/],
  ['workers fractional', 'ERR_OUT_OF_RANGE', { model: 'cluster', workers: 1.5 }, RangeError, /"workers" .* Received 1\.5/],
  [
    'workers not a number',
    'ERR_INVALID_ARG_TYPE',
    { model: 'cluster', workers: '2' },
    TypeError,
    /"workers" option must be a number\. Received '2'/,
  ],
  [
    'trace for node',
    'ERR_INVALID_ARG_VALUE',
    { model: 'node', trace: true },
    TypeError,
    /"trace" option applies only to the native models .* Received it for model 'node'/,
  ],
  [
    'reap for cluster',
    'ERR_INVALID_ARG_VALUE',
    { model: 'cluster', reap: 'none' },
    TypeError,
    /"reap" option applies only to the fork model\. Received it for model 'cluster'/,
  ],
  [
    'labCrash for node',
    'ERR_INVALID_ARG_VALUE',
    { model: 'node', labCrash: true },
    TypeError,
    /"labCrash" option applies only to the fork, thread, prefork, reuseport and prethread models\. Received it for model 'node'/,
  ],
  [
    'node maxClients over the limit',
    'ERR_OUT_OF_RANGE',
    { model: 'node', maxClients: 4097 },
    RangeError,
    /"maxClients" .* Received 4097/,
  ],
  [
    'unknown handler',
    'ERR_INVALID_ARG_VALUE',
    { model: 'iterative', handler: 'rot13' },
    TypeError,
    /"handler" option must be one of 'echo', 'upper'\. Received 'rot13'/,
  ],
];

describe('startServer option validation', () => {
  test.each(cases)('%s: %s', (_name, code, options, type, message) => {
    const before = snapshot();
    let thrown: unknown;
    try {
      // Thrown synchronously, before any socket exists.
      void startServer(options as never);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as { code?: string }).code).toBe(code);
    expect(snapshot()).toEqual(before);
  });

  test('the limits are the native ones', () => {
    expect(MAX_CLIENTS_LIMIT).toBe(4096);
    expect(MAX_WORKERS).toBe(64);
    expect(native.constants.MAX_WORKERS).toBe(MAX_WORKERS); // the pool page is sized by it
  });

  test('pool models take maxClients up to the general limit (no process per connection), fork up to its own', () => {
    expect(resolveOptions({ model: 'prefork', maxClients: 4096 }).maxClients).toBe(4096);
    expect(resolveOptions({ model: 'reuseport', maxClients: 4096 }).maxClients).toBe(4096);
    expect(() => resolveOptions({ model: 'fork', maxClients: 4096 })).toThrow(RangeError);
    expect(resolveOptions({ model: 'prefork' })).toMatchObject({
      acceptLock: 'none',
      workers: Math.min(availableParallelism(), 64),
    });
  });

  test('defaults of prethread and cluster', () => {
    expect(resolveOptions({ model: 'prethread' })).toMatchObject({
      acceptLock: 'mutex',
      workers: Math.min(availableParallelism(), 64),
    });
    expect(resolveOptions({ model: 'prethread', workers: 64, acceptLock: 'main' })).toMatchObject({
      workers: 64,
      acceptLock: 'main',
    });
    expect(resolveOptions({ model: 'cluster' })).toMatchObject({ schedulingPolicy: 'rr' });
  });

  test('close() validates timeoutMs', async () => {
    const server = await startServer({ model: 'thread' });
    expect(() => server.close({ timeoutMs: -5 })).toThrow(RangeError);
    expect(() => server.close({ timeoutMs: -5 })).toThrow(/"timeoutMs" .* Received -5/);
    expect(server.listening).toBe(true); // a rejected close() changed nothing
    await server.close({ timeoutMs: 0 });
  });
});
