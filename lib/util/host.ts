// Host names, resolved as Node resolves them, in the three places that take one: startServer's
// `host` (every model), `serve --host` (through startServer) and `check HOST:PORT`.
//
// net.Server#listen hands its host to dns.lookup() with no options (lib/net.js, lookupAndListen):
// a numeric address comes back as it is; a name ('localhost') becomes the first address
// getaddrinfo() gives, in the order dns.getDefaultResultOrder() says — 'verbatim' by default (the
// system's own order: ::1 first where /etc/hosts lists it for localhost, as Debian's does), or what
// --dns-result-order / dns.setDefaultResultOrder() chose in this process. A name that does not
// resolve fails as dns.lookup fails: `getaddrinfo ENOTFOUND name`, with code, syscall and hostname.
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';

/** A numeric address as is, with its family (4 or 6), or null for a name. */
export function numericAddress(host: string): LookupAddress | null {
  const family = isIP(host);
  return family === 0 ? null : { address: host, family };
}

/** What net.Server#listen binds for `host`: the address and family dns.lookup() gives it. */
export async function listenAddress(host: string): Promise<LookupAddress> {
  return numericAddress(host) ?? (await lookup(host));
}

/** How long check waits for one of a name's addresses to accept, before it tries the next. */
const PROBE_MS = 3000;

function accepts(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: PROBE_MS });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/**
 * The address a client reaches `host`:`port` at, as net.connect() does with autoSelectFamily (on
 * by default since Node 20): every address dns.lookup() gives, in its order, the first that accepts
 * a connection. A numeric address, or a name with one address, is taken without trying it; when
 * none accepts, the first (what connects to it then reports the failure).
 */
export async function reachableAddress(host: string, port: number): Promise<LookupAddress> {
  const numeric = numericAddress(host);
  if (numeric) return numeric;
  const all = await lookup(host, { all: true });
  if (all.length > 1) {
    for (const a of all) if (await accepts(a.address, port)) return a;
  }
  return all[0];
}

/**
 * Where a client on this machine connects to a server listening on `address`: the loopback address
 * of its family when it listens on every address (0.0.0.0, ::), else the address itself.
 */
export function localAddressFor(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '::1';
  return address;
}
