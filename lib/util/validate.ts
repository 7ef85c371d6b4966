// The checks behind every option error: a TypeError for the wrong kind of value, a RangeError
// for a value out of range, each naming the option and showing what was received, and each with
// the `code` Node's own validation gives the same mistake (lib/internal/errors.js):
//   ERR_INVALID_ARG_TYPE   TypeError   not the right type (a string where a number belongs)
//   ERR_INVALID_ARG_VALUE  TypeError   the right type, not an accepted value ('prefork')
//   ERR_OUT_OF_RANGE       RangeError  a number outside its range, or not an integer
//   ERR_SOCKET_BAD_PORT    RangeError  a port outside 0..65535, as net.Server.listen() says it
import { isIPv4, isIPv6 } from 'node:net';
import { inspect } from 'node:util';

export const show = (v: unknown): string => inspect(v, { breakLength: Infinity, depth: 1 });

type ValidationCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE' | 'ERR_SOCKET_BAD_PORT';

type ValidationError = (TypeError | RangeError) & { code: ValidationCode };

/**
 * An error shaped as Node's: `code` set, and the code in the stack's first line
 * (`TypeError [ERR_INVALID_ARG_TYPE]: The "port" option …`).
 */
function coded(Kind: TypeErrorConstructor | RangeErrorConstructor, code: ValidationCode, message: string): ValidationError {
  const err = new Kind(message) as ValidationError;
  err.code = code;
  if (err.stack?.startsWith(`${Kind.name}: `)) err.stack = `${Kind.name} [${code}]${err.stack.slice(Kind.name.length)}`;
  return err;
}

/** The wrong kind of value for `what` (a `The "x" option …` message). */
export const invalidType = (message: string): ValidationError => coded(TypeError, 'ERR_INVALID_ARG_TYPE', message);
/** A value of the right kind that is not accepted. */
export const invalidValue = (message: string): ValidationError => coded(TypeError, 'ERR_INVALID_ARG_VALUE', message);
/** A number out of its range. */
export const outOfRange = (message: string): ValidationError => coded(RangeError, 'ERR_OUT_OF_RANGE', message);

export function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') {
    throw invalidType(`The "${name}" option must be a number. Received ${show(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw outOfRange(`The "${name}" option must be an integer from ${min} to ${max}. Received ${show(value)}`);
  }
  return value;
}

/** A TCP port, `min` (0 or 1) to 65535: out of range is ERR_SOCKET_BAD_PORT, as in net. */
export function port(name: string, value: unknown, min: 0 | 1): number {
  if (typeof value !== 'number') {
    throw invalidType(`The "${name}" option must be a number. Received ${show(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > 65535) {
    throw coded(
      RangeError,
      'ERR_SOCKET_BAD_PORT',
      `The "${name}" option must be an integer from ${min} to 65535. Received ${show(value)}`,
    );
  }
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    const message = `The "${name}" option must be one of ${allowed.map((a) => `'${a}'`).join(', ')}. Received ${show(value)}`;
    throw typeof value === 'string' ? invalidValue(message) : invalidType(message);
  }
  return value as T;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidType(`The "${name}" option must be a boolean. Received ${show(value)}`);
  return value;
}

/**
 * A numeric IPv4 or IPv6 address, where no name is looked up: the load generator, the C
 * references, runChecks (`check` resolves a name first: lib/util/host.ts).
 */
export function numericHost(value: unknown): string {
  if (typeof value !== 'string' || !(isIPv4(value) || isIPv6(value))) {
    const message = `The "host" option must be a numeric IPv4 or IPv6 address. Received ${show(value)}`;
    throw typeof value === 'string' ? invalidValue(message) : invalidType(message);
  }
  return value;
}

/** A host name's characters (RFC 1123, and '_' as resolvers take it), at most 253 of them. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;

/**
 * A numeric IPv4 or IPv6 address (IPv6 maybe scoped), or a host name for dns.lookup() to resolve,
 * as net.Server#listen takes it (lib/util/host.ts resolves it). What can be neither — '', a port
 * glued on ('127.0.0.1:80'), a zone on IPv4 ('127.0.0.1%lo'), spaces — is refused here, at once,
 * rather than sent to the resolver.
 */
export function host(name: string, value: unknown): string {
  if (typeof value !== 'string' || !(isIPv4(value) || isIPv6(value) || HOST_NAME.test(value))) {
    const message = `The "${name}" option must be a numeric IPv4 or IPv6 address or a host name. Received ${show(value)}`;
    throw typeof value === 'string' ? invalidValue(message) : invalidType(message);
  }
  return value;
}

/**
 * An AbortSignal, or undefined. An instance, not a look-alike (Node's validateAbortSignal asks for
 * an `aborted` property only): the server listens to it and, once closed, stops listening
 * (removeEventListener), which an object that merely looks like one may not let it do — and
 * close() would then fail, with no code, every time it is called.
 */
export function abortSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) {
    throw invalidType(`The "${name}" option must be an instance of AbortSignal. Received ${show(value)}`);
  }
  return value as AbortSignal;
}

/** The options argument: an object (`what` names it in the message). */
export function object(value: unknown, what = 'options'): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidType(`The "${what}" argument must be an object. Received ${show(value)}`);
  }
  return value as Record<string, unknown>;
}

/** An options object with only known keys. */
export function optionsObject(options: unknown, known: ReadonlySet<string>): Record<string, unknown> {
  const o = object(options);
  for (const key of Object.keys(o)) {
    if (!known.has(key)) throw invalidValue(`Unknown option "${key}". Known options: ${[...known].join(', ')}`);
  }
  return o;
}
