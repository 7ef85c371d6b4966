// What every check of `check` is given and returns: the resolved options, the bounds of every
// wait, the context (a client of the server, what earlier checks found), the outcomes, and the
// small bilingual text helpers the checks share.
import { Client, counterRise, tcpExtCounters, tcpTable } from '../labs/kit';
import type { Lang } from '../util/i18n';
import { CheckName, CheckResult, diagnosis, Diagnosis, Text, text } from './report';
import { ServerWatch } from './watch';

export interface Resolved {
  host: string;
  port: number;
  pid?: number;
  maxClients?: number;
  whenFull: 'refuse' | 'wait';
  require?: 'concurrent';
  strict: boolean;
  lang: Lang;
  only?: CheckName[];
  /** HOST:PORT, [IPv6]:PORT. */
  target: string;
}

// Bounds of every wait: a broken server makes a check fail, never hang.
export const CONNECT_MS = 3000;
export const REPLY_MS = 5000;
// All clients echoed within this while all are connected: concurrent. An iterative server never
// answers the second client while the first stays, however long: the bound is only there for a
// busy machine's sake, and an iterative server costs the check this long once.
export const CONCURRENT_MS = 3000;
export const NEXT_MS = 3000; // one at a time: the next client's echo after the previous one left
export const REFUSE_MS = 2000; // client N+1: refused within this, or else it is waiting
export const FREED_MS = 5000; // a place freed by a client that left is offered again
export const SETTLE_MS = 3000; // /proc: zombies reaped, descriptors closed, threads gone; a dying process gone
export const VANISH_BYTES = 128 << 20; // vanish: at most this much sent to a server that never stops reading
export const VANISH_STUCK_MS = 300; // vanish: the kernel took none of ours for this long: the server stopped reading
export const BURST = 5; // zombies: children that exit together (UNP 5.9's client opens five)
export const ECHO_SIZES = [1, 100, 4096, 65536, 1 << 20];
export const SIGPIPE = 13;

/** A connect() refused after the server had answered: nothing listens there any more. */
export class ServerGone extends Error {}

/** The first connect of the run failed: there is no server to check. */
export class NoServer extends Error {
  constructor(readonly why: Text) {
    super(why.en);
  }
}

/** True if some socket listens on `port` in this network namespace (/proc/net/tcp, tcp6). */
export const listening = (port: number) => tcpTable(port).some((e) => e.local.port === port && e.state === 'LISTEN');

/** What every check is given. */
export interface Ctx {
  o: Resolved;
  watch: ServerWatch | null;
  /**
   * A client of the server. Throws NoServer when the run's first connect fails (nothing to check),
   * ServerGone when a later one is refused (the server is gone).
   */
  open(): Promise<Client>;
  /** A client has connected: the server answered once. */
  answered: boolean;
  /** A connect() was refused after that. */
  refused: boolean;
  /** The echo check passed (a single client is echoed). */
  echoPassed: boolean;
  /** The concurrency check saw at most this many clients served at once (the others waited). */
  servedAtOnce?: number;
}

/** A check's result, without the name and point that its definition gives. */
export type Outcome = Omit<CheckResult, 'name' | 'point'>;

export interface CheckDef {
  name: CheckName;
  point: Text;
  run(ctx: Ctx): Promise<Outcome>;
  /** What the check was doing when a server dies during it, if that tells something. */
  circumstance?: Text;
}

export const pass = (seen: Text, more: Partial<Outcome> = {}): Outcome => ({ status: 'pass', seen, ...more });
export const fail = (seen: Text, more: Partial<Outcome> = {}): Outcome => ({ status: 'fail', seen, ...more });
export const skip = (seen: Text): Outcome => ({ status: 'skip', seen });

export const t = (lang: Lang, m: Text) => m[lang];
export const size = (n: number) => (n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`);
export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** Client numbers as a list: `1, 2` / `1、2`. */
export const list = (xs: number[]) => text(xs.join(', '), xs.join('、'));
/** Joins texts with `; ` / `；`. */
export const joinTexts = (ts: Text[]) => text(ts.map((t) => t.en).join('; '), ts.map((t) => t.zh).join('；'));
export const withDiagnosis = (d: Diagnosis | undefined): Partial<Outcome> => (d ? { diagnosis: d } : {});

/**
 * A reply cut short while the kernel counted a close() with unread data (TcpExt TCPAbortOnClose in
 * /proc/net/netstat, since `before`): the server's close() reset the connection. The counter is the
 * machine's, so it is the evidence only together with a short reply; libuv reports such a reset
 * after data as an ordinary end, so the client's error code alone would miss it.
 */
export function resetOnClose(before: Map<string, number>): Diagnosis | undefined {
  if (counterRise(before, tcpExtCounters(), 'TCPAbortOnClose') === 0) return undefined;
  return diagnosis(
    'reset-on-close',
    text(
      'the server closed the connection while bytes the client had sent were still unread in its receive buffer (TCPAbortOnClose rose in /proc/net/netstat): the kernel then sends RST instead of FIN, and the client loses what it had not read yet; shut down the write side (shutdown(cfd, SHUT_WR)), read until EOF, then close(cfd)',
      '服务器在客户端发来的字节还未读完（仍在接收缓冲区中）时关闭了连接（/proc/net/netstat 中 TCPAbortOnClose 增加）：内核于是发送 RST 而不是 FIN，客户端会丢掉尚未读到的数据；先 shutdown(cfd, SHUT_WR) 关闭写方向，读到 EOF，再 close(cfd)',
    ),
  );
}
