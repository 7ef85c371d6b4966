// Bad input gets a TypeError or RangeError naming the option and the value, with Node's code for
// the mistake, and creates nothing.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_CLIENTS_LIMIT, MAX_WORKERS, MODELS, startServer } from '../lib';
import { native } from '../lib/addon';
import { resolveOptions } from '../lib/server/options';
import { snapshot } from './helpers';

// A plain file without any execute bit (even root may not execute it).
const NOT_EXECUTABLE = join(mkdtempSync(join(tmpdir(), 'posix-servers-options-')), 'data.txt');
writeFileSync(NOT_EXECUTABLE, 'not a program\n', { mode: 0o644 });

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
    /"model" option must be one of 'fork', 'thread', 'iterative', 'prefork', 'reuseport', 'prethread', 'epoll', 'uring', 'node', 'cluster'\. Received 'prethreaded'/,
  ],
  ['model missing', 'ERR_INVALID_ARG_TYPE', {}, TypeError, /"model" option .* Received undefined/],
  ['unknown option', 'ERR_INVALID_ARG_VALUE', { model: 'fork', maxclients: 3 }, TypeError, /Unknown option "maxclients"/],
  [
    'host with a port glued on',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', host: '127.0.0.1:80' },
    TypeError,
    /"host" option must be a numeric IPv4 or IPv6 address or a host name\. Received '127\.0\.0\.1:80'/,
  ],
  ['host empty', 'ERR_INVALID_ARG_VALUE', { model: 'fork', host: '' }, TypeError, /"host" option .* Received ''/],
  [
    'host with a space',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', host: 'local host' },
    TypeError,
    /"host" option .* Received 'local host'/,
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
    'rpcMaxBytes without the rpc handler',
    'ERR_INVALID_ARG_VALUE',
    { model: 'epoll', rpcMaxBytes: 4000 },
    TypeError,
    /"rpcMaxBytes" option applies only with handler 'rpc'\. Received 4000/,
  ],
  [
    'rpcMaxBytes 0',
    'ERR_OUT_OF_RANGE',
    { model: 'fork', handler: 'rpc', rpcMaxBytes: 0 },
    RangeError,
    /"rpcMaxBytes" option must be an integer from 1 to 1073741824\. Received 0/,
  ],
  [
    'a zone on an IPv4 address',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', host: '127.0.0.1%lo' },
    TypeError,
    /"host" option must be a numeric IPv4 or IPv6 address or a host name\. Received '127\.0\.0\.1%lo'/,
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
    'unknown whenFull',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', whenFull: 'queue' },
    TypeError,
    /"whenFull" option must be one of 'refuse', 'wait'\. Received 'queue'/,
  ],
  [
    'whenFull not a string',
    'ERR_INVALID_ARG_TYPE',
    { model: 'fork', whenFull: true },
    TypeError,
    /"whenFull" option .* Received true/,
  ],
  [
    'whenFull wait for node',
    'ERR_INVALID_ARG_VALUE',
    { model: 'node', whenFull: 'wait' },
    TypeError,
    /"whenFull" option 'wait' applies only to the fork, thread, prefork, reuseport, prethread, epoll and uring models: Node's net\.Server .* Received it for model 'node'/,
  ],
  [
    'whenFull wait for cluster',
    'ERR_INVALID_ARG_VALUE',
    { model: 'cluster', whenFull: 'wait' },
    TypeError,
    /"whenFull" option 'wait' applies only to .* Received it for model 'cluster'/,
  ],
  [
    'whenFull for iterative',
    'ERR_INVALID_ARG_VALUE',
    { model: 'iterative', whenFull: 'refuse' },
    TypeError,
    /"whenFull" option does not apply to the iterative model: it serves one client at a time and never refuses one/,
  ],
  [
    'whenFull wait with reap none',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', whenFull: 'wait', reap: 'none' },
    TypeError,
    /"whenFull" option 'wait' needs the fork master to reap its children \(reap 'sigchld'\)/,
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
    'labCrash for uring',
    'ERR_INVALID_ARG_VALUE',
    { model: 'uring', labCrash: true },
    TypeError,
    /"labCrash" option does not apply to the uring model/,
  ],
  [
    'workers for uring',
    'ERR_INVALID_ARG_VALUE',
    { model: 'uring', workers: 2 },
    TypeError,
    /"workers" option applies only to .* Received it for model 'uring'/,
  ],
  [
    'uringReceive for epoll',
    'ERR_INVALID_ARG_VALUE',
    { model: 'epoll', uringReceive: 'single' },
    TypeError,
    /"uringReceive" option applies only to the uring model\. Received it for model 'epoll'/,
  ],
  [
    'unknown uringReceive',
    'ERR_INVALID_ARG_VALUE',
    { model: 'uring', uringReceive: 'double' },
    TypeError,
    /"uringReceive" option must be one of 'multishot', 'single'\. Received 'double'/,
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
    /"handler" option must be one of 'echo', 'upper', 'discard', 'chargen', 'daytime', 'time', 'rpc', or \{ exec: \[file, \.\.\.args\] \}\. Received 'rot13'/,
  ],
  [
    'handler an array',
    'ERR_INVALID_ARG_TYPE',
    { model: 'fork', handler: ['/bin/cat'] },
    TypeError,
    /"handler" option must be one of .* Received \[ '\/bin\/cat' \]/,
  ],
  [
    'exec with an empty array',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', handler: { exec: [] } },
    TypeError,
    /"handler\.exec" option must name a program: \[file, \.\.\.args\]\. Received \[\]/,
  ],
  [
    'exec not an array',
    'ERR_INVALID_ARG_TYPE',
    { model: 'fork', handler: { exec: '/bin/cat' } },
    TypeError,
    /"handler\.exec" option must be an array: \[file, \.\.\.args\]\. Received '\/bin\/cat'/,
  ],
  [
    'exec with a non-string argument',
    'ERR_INVALID_ARG_TYPE',
    { model: 'fork', handler: { exec: ['/bin/echo', 42] } },
    TypeError,
    /"handler\.exec\[1\]" option must be a string\. Received 42/,
  ],
  [
    'exec with a null byte in an argument',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', handler: { exec: ['/bin/echo', 'a\0b'] } },
    TypeError,
    /"handler\.exec\[1\]" option must be a string without null bytes/,
  ],
  [
    'exec with an empty program',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', handler: { exec: [''] } },
    TypeError,
    /"handler\.exec\[0\]" option must name a program/,
  ],
  [
    'exec env not an object',
    'ERR_INVALID_ARG_TYPE',
    { model: 'fork', handler: { exec: ['/bin/cat'], env: 'A=1' } },
    TypeError,
    /"handler\.env" option must be an object of strings\. Received 'A=1'/,
  ],
  [
    'exec env with a non-string value',
    'ERR_INVALID_ARG_TYPE',
    { model: 'fork', handler: { exec: ['/bin/cat'], env: { PORT: 80 } } },
    TypeError,
    /"handler\.env\.PORT" option must be a string\. Received 80/,
  ],
  [
    'exec env with a bad name',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', handler: { exec: ['/bin/cat'], env: { 'A=B': 'c' } } },
    TypeError,
    /"handler\.env" option has an invalid variable name\. Received 'A=B'/,
  ],
  [
    'exec stderr unknown',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', handler: { exec: ['/bin/cat'], stderr: 'pipe' } },
    TypeError,
    /"handler\.stderr" option must be one of 'null', 'socket', 'inherit'\. Received 'pipe'/,
  ],
  [
    'exec with an unknown key',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', handler: { exec: ['/bin/cat'], cwd: '/' } },
    TypeError,
    /Unknown key "cwd" in the "handler" option/,
  ],
  [
    'exec on the thread model',
    'ERR_INVALID_ARG_VALUE',
    { model: 'thread', handler: { exec: ['/bin/cat'] } },
    TypeError,
    /"handler" option \{ exec \} applies only to the fork and prefork models: a process serving one client becomes the program, and a thread \(or an event loop serving many clients\) cannot\. Received it for model 'thread'/,
  ],
  [
    'exec on the iterative model',
    'ERR_INVALID_ARG_VALUE',
    { model: 'iterative', handler: { exec: ['/bin/cat'] } },
    TypeError,
    /\{ exec \} applies only to the fork and prefork models.* model 'iterative'/,
  ],
  [
    'exec on the node model',
    'ERR_INVALID_ARG_VALUE',
    { model: 'node', handler: { exec: ['/bin/cat'] } },
    TypeError,
    /\{ exec \} applies only to the fork and prefork models.* model 'node'/,
  ],
  [
    'exec on the reuseport model',
    'ERR_INVALID_ARG_VALUE',
    { model: 'reuseport', handler: { exec: ['/bin/cat'] } },
    TypeError,
    /\{ exec \} applies only to the fork and prefork models.*an event loop serving many clients.* model 'reuseport'/,
  ],
  [
    'exec with idleTimeoutMs',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', handler: { exec: ['/bin/cat'] }, idleTimeoutMs: 1000 },
    TypeError,
    /"idleTimeoutMs" option does not apply to the exec handler: the program reads and writes the connection itself\. Received 1000/,
  ],
  [
    'exec with labCrash',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', handler: { exec: ['/bin/cat'] }, labCrash: true },
    TypeError,
    /"labCrash" option does not apply to the exec handler/,
  ],
  [
    'labCrash with daytime',
    'ERR_INVALID_ARG_VALUE',
    { model: 'thread', handler: 'daytime', labCrash: true },
    TypeError,
    /"labCrash" option needs a handler that reads the client \(echo, upper, discard, chargen, rpc\)\. Received handler 'daytime'/,
  ],
  [
    'maxPerSource negative',
    'ERR_OUT_OF_RANGE',
    { model: 'fork', maxPerSource: -1 },
    RangeError,
    /"maxPerSource" option must be an integer from 0 to 4096\. Received -1/,
  ],
  [
    'maxPerSource not a number',
    'ERR_INVALID_ARG_TYPE',
    { model: 'node', maxPerSource: '2' },
    TypeError,
    /"maxPerSource" option must be a number\. Received '2'/,
  ],
  [
    'maxConnectionsPerSecond too large',
    'ERR_OUT_OF_RANGE',
    { model: 'thread', maxConnectionsPerSecond: 1e7 },
    RangeError,
    /"maxConnectionsPerSecond" option must be an integer from 0 to 1000000\. Received 10000000/,
  ],
  [
    'allow not an array',
    'ERR_INVALID_ARG_TYPE',
    { model: 'fork', allow: '10.0.0.0/8' },
    TypeError,
    /"allow" option must be an array of CIDR prefixes\. Received '10\.0\.0\.0\/8'/,
  ],
  [
    'allow with a host name',
    'ERR_INVALID_ARG_VALUE',
    { model: 'cluster', allow: ['localhost'] },
    TypeError,
    /"allow\[0\]" option must be an IPv4 or IPv6 address with an optional \/prefix .* Received 'localhost'/,
  ],
  [
    'allow with a number',
    'ERR_INVALID_ARG_TYPE',
    { model: 'cluster', allow: [10] },
    TypeError,
    /"allow\[0\]" option must be an IPv4 or IPv6 address .* Received 10/,
  ],
  [
    'deny with a prefix too long',
    'ERR_OUT_OF_RANGE',
    { model: 'iterative', deny: ['10.0.0.0/33'] },
    RangeError,
    /"deny\[0\]" option's prefix must be from 0 to 32\. Received '10\.0\.0\.0\/33'/,
  ],
  [
    'deny with an IPv6 prefix too long',
    'ERR_OUT_OF_RANGE',
    { model: 'fork', deny: ['::1', 'fe80::/129'] },
    RangeError,
    /"deny\[1\]" option's prefix must be from 0 to 128\. Received 'fe80::\/129'/,
  ],
  [
    'deny with a bad prefix',
    'ERR_INVALID_ARG_VALUE',
    { model: 'node', deny: ['10.0.0.0/x'] },
    TypeError,
    /"deny\[0\]" option must be an IPv4 or IPv6 address/,
  ],
  [
    'deny with a zone',
    'ERR_INVALID_ARG_VALUE',
    { model: 'fork', deny: ['fe80::1%lo'] },
    TypeError,
    /"deny\[0\]" option must be an IPv4 or IPv6 address/,
  ],
  [
    'too many allow rules',
    'ERR_OUT_OF_RANGE',
    { model: 'fork', allow: Array.from({ length: 257 }, () => '10.0.0.1') },
    RangeError,
    /"allow" option takes at most 256 rules\. Received 257/,
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

  test.each([
    ['a relative path that does not resolve', ['./no-such-program'], 'ENOENT', /'\.\/no-such-program' cannot be run: ENOENT/],
    [
      'a bare name not in PATH',
      ['no-such-program-in-path'],
      'ENOENT',
      /'no-such-program-in-path' cannot be run: ENOENT, not found in PATH/,
    ],
    [
      'an absolute path that does not exist',
      ['/no/such/program'],
      'ENOENT',
      /'\/no\/such\/program' cannot be run: ENOENT, no such file/,
    ],
    ['a directory', ['/tmp'], 'EACCES', /'\/tmp' cannot be run: EACCES, it is a directory/],
    ['a file that is not executable', [NOT_EXECUTABLE], 'EACCES', /cannot be run: EACCES, not an executable file/],
  ])('exec: %s is an Error with its code, thrown at once', (_name, exec, code, message) => {
    const before = snapshot();
    let thrown: unknown;
    try {
      void startServer({ model: 'fork', handler: { exec } });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect(thrown).toMatchObject({ code, syscall: 'access' });
    expect((thrown as Error).message).toMatch(message);
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

  test("whenFull: 'refuse' by default in every model; 'wait' where a server can stop accepting; 'refuse' given to node and cluster", () => {
    for (const model of MODELS) {
      expect(resolveOptions({ model }).whenFull).toBe('refuse');
    }
    for (const model of ['fork', 'thread', 'prefork', 'reuseport', 'prethread', 'epoll'] as const) {
      expect(resolveOptions({ model, whenFull: 'wait' }).whenFull).toBe('wait');
    }
    expect(resolveOptions({ model: 'node', whenFull: 'refuse' }).whenFull).toBe('refuse');
    expect(resolveOptions({ model: 'cluster', whenFull: 'refuse' }).whenFull).toBe('refuse');
  });

  test('close() validates timeoutMs', async () => {
    const server = await startServer({ model: 'thread' });
    expect(() => server.close({ timeoutMs: -5 })).toThrow(RangeError);
    expect(() => server.close({ timeoutMs: -5 })).toThrow(/"timeoutMs" .* Received -5/);
    expect(server.listening).toBe(true); // a rejected close() changed nothing
    await server.close({ timeoutMs: 0 });
  });
});
