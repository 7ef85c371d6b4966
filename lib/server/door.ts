// The door's rules in TypeScript: their validation (for every model), and the door itself for
// Node's own models (node, cluster), applied in NetListenerBackend's admission exactly as the
// native door (native/core/door.h) applies them in every native accept path:
//
//   allow / deny: CIDR prefixes, IPv4 and IPv6; deny wins; with allow rules, an address that
//   matches none is refused too ('denied'). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a
//   dual-stack listener reports IPv4 clients) is its IPv4 address, for rules and counts alike.
//   maxPerSource: live connections from one address ('per-source').
//   maxConnectionsPerSecond: a token bucket over all clients, holding that many tokens and
//   refilled continuously at that rate; each admitted connection takes one ('rate').
//
// Checked in that order, so a refused client never takes a token.
import { isIPv4, isIPv6 } from 'node:net';
import type { RejectReason } from './events';
import { native } from '../addon';
import { invalidType, invalidValue, outOfRange, show } from '../util/validate';

/** The highest maxConnectionsPerSecond. */
export const MAX_CONNECTIONS_PER_SECOND = 1_000_000;

interface DoorRules {
  maxPerSource: number;
  maxConnectionsPerSecond: number;
  /** Normalized 'address/prefix' (host bits cleared; IPv4-mapped IPv6 as IPv4). */
  allow: string[];
  deny: string[];
}

/** An address or prefix as bytes. */
interface Prefix {
  family: 4 | 6;
  bytes: Uint8Array;
  bits: number;
}

function ipv4Bytes(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

function ipv6Bytes(text: string): Uint8Array {
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  let t = text;
  const lastColon = t.lastIndexOf(':');
  if (t.includes('.', lastColon)) {
    const v4 = ipv4Bytes(t.slice(lastColon + 1));
    t = `${t.slice(0, lastColon + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const [head, tail] = t.includes('::') ? t.split('::') : [t, undefined];
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - groups(tail).length).fill(0), ...groups(tail)];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

const isMapped = (b: Uint8Array) => b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/** A client's address as the door sees it: family and bytes, IPv4-mapped IPv6 as IPv4. */
function sourceOf(address: string): { family: 4 | 6; bytes: Uint8Array } | null {
  if (isIPv4(address)) return { family: 4, bytes: ipv4Bytes(address) };
  const bare = address.split('%')[0];
  if (!isIPv6(bare)) return null;
  const bytes = ipv6Bytes(bare);
  return isMapped(bytes) ? { family: 4, bytes: bytes.slice(12) } : { family: 6, bytes };
}

function text(p: Prefix): string {
  if (p.family === 4) return `${[...p.bytes].join('.')}/${p.bits}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((p.bytes[i] << 8) | p.bytes[i + 1]).toString(16));
  return `${groups.join(':')}/${p.bits}`;
}

/**
 * Validates one rule of `allow`/`deny` ('10.0.0.0/8', '::1', 'fe80::/10') and returns it
 * normalized as 'address/prefix'. A TypeError names the option and the bad value.
 */
function parseCidr(name: string, value: unknown): string {
  const message = `The "${name}" option must be an IPv4 or IPv6 address with an optional /prefix ('10.0.0.0/8', '::1'). Received ${show(value)}`;
  const bad = () => invalidValue(message);
  if (typeof value !== 'string') throw invalidType(message);
  const [address, prefix, ...extra] = value.split('/');
  if (extra.length > 0) throw bad();
  // A zone (fe80::1%eth0) names an interface, not addresses: no rule can use one.
  const family = isIPv4(address) ? 4 : isIPv6(address) && !address.includes('%') ? 6 : 0;
  if (family === 0) throw bad();
  const max = family === 4 ? 32 : 128;
  if (prefix !== undefined && !/^\d{1,3}$/.test(prefix)) throw bad();
  const bits = prefix === undefined ? max : Number(prefix);
  if (bits > max) {
    throw outOfRange(`The "${name}" option's prefix must be from 0 to ${max}. Received ${show(value)}`);
  }
  let p: Prefix = { family, bytes: family === 4 ? ipv4Bytes(address) : ipv6Bytes(address), bits };
  if (p.family === 6 && bits >= 96 && isMapped(p.bytes)) p = { family: 4, bytes: p.bytes.slice(12), bits: bits - 96 };
  for (let bit = p.bits; bit < p.bytes.length * 8; bit++) p.bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return text(p);
}

/** Validates a list of rules (at most MAX_DOOR_RULES, native/core/door.h's kMaxDoorRules). */
export function parseCidrList(name: string, value: unknown): string[] {
  const MAX_DOOR_RULES = native.constants.MAX_DOOR_RULES; // read here: importing this module loads no addon
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalidType(`The "${name}" option must be an array of CIDR prefixes. Received ${show(value)}`);
  if (value.length > MAX_DOOR_RULES) {
    throw outOfRange(`The "${name}" option takes at most ${MAX_DOOR_RULES} rules. Received ${value.length}`);
  }
  return value.map((v, i) => parseCidr(`${name}[${i}]`, v));
}

function prefixOf(rule: string): Prefix {
  const [address, bits] = rule.split('/');
  const src = sourceOf(address)!;
  return { family: src.family, bytes: src.bytes, bits: Number(bits) };
}

function contains(p: Prefix, src: { family: 4 | 6; bytes: Uint8Array }): boolean {
  if (p.family !== src.family) return false;
  for (let bit = 0; bit < p.bits; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((p.bytes[bit >> 3] & mask) !== (src.bytes[bit >> 3] & mask)) return false;
  }
  return true;
}

export const anyDoorRule = (r: DoorRules): boolean =>
  r.maxPerSource > 0 || r.maxConnectionsPerSecond > 0 || r.allow.length > 0 || r.deny.length > 0;

type DoorAnswer = { admitted: true; key: string | null } | { admitted: false; reason: RejectReason };

/** The door of Node's own models: one per server, in the process that accepts. */
export class JsDoor {
  readonly #rules: DoorRules;
  readonly #allow: Prefix[];
  readonly #deny: Prefix[];
  /** Source key → live connections admitted from it. */
  readonly #live = new Map<string, number>();
  /** GCRA: when the bucket would be full again, in ms (performance.now()). */
  #fullAt = 0;

  constructor(rules: DoorRules) {
    this.#rules = rules;
    this.#allow = rules.allow.map(prefixOf);
    this.#deny = rules.deny.map(prefixOf);
  }

  /**
   * Right after accept: admitted (then release(key) when the connection ends; key null when
   * nothing is held), or refused with the rule's reason.
   */
  admit(address: string): DoorAnswer {
    const r = this.#rules;
    if (!anyDoorRule(r)) return { admitted: true, key: null };
    const src = sourceOf(address);
    const refused = (reason: RejectReason): DoorAnswer => ({ admitted: false, reason });
    if (src === null) return refused('denied'); // no address left (the client reset before we looked)
    if (this.#deny.some((p) => contains(p, src)) || (this.#allow.length > 0 && !this.#allow.some((p) => contains(p, src)))) {
      return refused('denied');
    }
    const key = `${src.family}:${[...src.bytes].join('.')}`;
    const live = this.#live.get(key) ?? 0;
    if (r.maxPerSource > 0 && live >= r.maxPerSource) return refused('per-source');
    if (r.maxConnectionsPerSecond > 0) {
      const interval = 1000 / r.maxConnectionsPerSecond;
      const tolerance = 1000 - interval;
      const now = performance.now();
      const base = Math.max(this.#fullAt, now);
      if (base - now > tolerance) return refused('rate');
      this.#fullAt = base + interval;
    }
    if (r.maxPerSource === 0) return { admitted: true, key: null };
    this.#live.set(key, live + 1);
    return { admitted: true, key };
  }

  /** The connection admitted under `key` is over. */
  release(key: string | null): void {
    if (key === null) return;
    const n = (this.#live.get(key) ?? 0) - 1;
    if (n > 0) this.#live.set(key, n);
    else this.#live.delete(key);
  }
}
