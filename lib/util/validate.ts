// The checks behind every option error: a TypeError for the wrong kind of value, a RangeError
// for a value out of range, each naming the option and showing what was received.
import { isIPv4, isIPv6 } from 'node:net';
import { inspect } from 'node:util';

export const show = (v: unknown): string => inspect(v, { breakLength: Infinity, depth: 1 });

export function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') {
    throw new TypeError(`The "${name}" option must be a number. Received ${show(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`The "${name}" option must be an integer from ${min} to ${max}. Received ${show(value)}`);
  }
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new TypeError(
      `The "${name}" option must be one of ${allowed.map((a) => `'${a}'`).join(', ')}. Received ${show(value)}`,
    );
  }
  return value as T;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`The "${name}" option must be a boolean. Received ${show(value)}`);
  return value;
}

/** A numeric IPv4 or IPv6 address (no name resolution: servers bind what they are told). */
export function numericHost(value: unknown): string {
  if (typeof value !== 'string' || !(isIPv4(value) || isIPv6(value))) {
    throw new TypeError(`The "host" option must be a numeric IPv4 or IPv6 address. Received ${show(value)}`);
  }
  return value;
}

/** An options object with only known keys. */
export function optionsObject(options: unknown, known: ReadonlySet<string>): Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`The "options" argument must be an object. Received ${show(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!known.has(key)) throw new TypeError(`Unknown option "${key}". Known options: ${[...known].join(', ')}`);
  }
  return o;
}
