// io_uring's records as a person reads them: the ring's set-up, each submission (an arm, a
// cancel) and each completion, with what the kernel returned. format.ts gives the other calls.
import type { TraceEvent } from '../server/events';
import type { Lang } from '../util/i18n';
import { errnoName } from '../util/os-names';

/** A uring record's result packs a second number above bit 32 (event_record.h). */
export const TWO_32 = 2 ** 32;

/** A packed uring result (event_record.h): the number above bit 32, and the 32 bits below. */
export function splitResult(result: number): { high: number; low: number } {
  const high = Math.floor(result / TWO_32);
  return { high, low: result - high * TWO_32 };
}

/** What a uring-cqe record says: op (accept, recv, send, cancel), the kernel's result, MORE. */
export function uringCompletion(e: TraceEvent): { op: string; res: number; more: boolean } {
  const { high, low } = splitResult(e.result);
  const ops: Record<number, string> = { 1: 'accept', 2: 'recv', 3: 'send', 4: 'cancel', 5: 'poll' };
  return { op: ops[high >> 8] ?? String(high >> 8), res: low | 0, more: (high & 1) !== 0 };
}

/** io_uring_enter's record: requests submitted, completions ready. */
export function uringEnter(e: TraceEvent): { submitted: number; completions: number } {
  const { high, low } = splitResult(e.result);
  return { submitted: low, completions: high };
}

const URING_ARMS: Record<number, { en: string; zh: string }> = {
  1: { en: 'multishot accept', zh: '多次触发的 accept' },
  2: { en: 'multishot receive', zh: '多次触发的接收' },
  3: { en: 'receive (single-shot)', zh: '接收（单次）' },
  4: { en: 'poll until a client is pending (out of descriptors)', zh: '轮询，直到有客户端等待（描述符已用完）' },
  5: { en: 'accept (single-shot: whenFull wait)', zh: 'accept（单次：whenFull wait）' },
  6: {
    en: 'poll for the listener’s hang-up only (full, whenFull wait: close() is still seen)',
    zh: '只轮询监听套接字的挂断（已满，whenFull wait：仍能察觉 close()）',
  },
};

const SETUP_FLAGS: Array<[number, string]> = [
  [1 << 3, 'CQSIZE'],
  [1 << 6, 'R_DISABLED'],
  [1 << 7, 'SUBMIT_ALL'],
  [1 << 8, 'COOP_TASKRUN'],
  [1 << 12, 'SINGLE_ISSUER'],
  [1 << 13, 'DEFER_TASKRUN'],
];

/** A uring call or completion as a line; `failed` is what a failed call says after its name. */
export function uringText(e: TraceEvent, lang: Lang, conn: string, failed: string): string {
  const en = lang === 'en';
  switch (e.call) {
    case 'io_uring_setup': {
      if (e.errno) return `io_uring_setup()${failed}`;
      const flags = SETUP_FLAGS.filter(([bit]) => (e.fd & bit) !== 0)
        .map(([, name]) => name)
        .join('|');
      return en ? `io_uring_setup(${flags}) → ring ${e.result}` : `io_uring_setup(${flags}) → 环 ${e.result}`;
    }
    case 'io_uring_register': {
      const op = e.result % 256;
      const count = Math.floor(e.result / 256);
      const what =
        op === 22
          ? en
            ? `IORING_REGISTER_PBUF_RING, ${count} receive buffers`
            : `IORING_REGISTER_PBUF_RING，${count} 个接收缓冲区`
          : op === 12
            ? 'IORING_REGISTER_ENABLE_RINGS'
            : `${op}`;
      return `io_uring_register(${e.fd}, ${what})${e.errno ? failed : ''}`;
    }
    case 'io_uring_enter': {
      if (e.errno) return `io_uring_enter(${e.fd})${failed}`;
      const { submitted, completions } = uringEnter(e);
      return en
        ? `io_uring_enter(${e.fd}) → ${submitted} submitted, ${completions} completions`
        : `io_uring_enter(${e.fd}) → 提交 ${submitted} 个，完成 ${completions} 个`;
    }
    case 'uring-arm': {
      const kind = URING_ARMS[e.result % 256] ?? { en: `kind ${e.result % 256}`, zh: `类型 ${e.result % 256}` };
      const again = e.result >= 256;
      const before = again && e.errno ? (en ? ` (the last one ended: ${e.errno})` : `（上一个结束于 ${e.errno}）`) : '';
      return en
        ? `${kind.en} ${again ? 're-armed' : 'armed'} on ${e.fd}${conn}${before}`
        : `在 ${e.fd} 上${again ? '重新' : ''}提交${kind.zh}${conn}${before}`;
    }
    case 'uring-cancel':
      return e.result === 1
        ? en
          ? `cancel the receive on ${e.fd}: backpressure${conn}`
          : `取消 ${e.fd} 上的接收：背压${conn}`
        : en
          ? `cancel every request on ${e.fd}: the connection ends${conn}`
          : `取消 ${e.fd} 上的所有请求：连接即将结束${conn}`;
    default: {
      const { op, res, more } = uringCompletion(e);
      const value =
        res < 0
          ? errnoName(-res)
          : op === 'accept'
            ? `cfd ${res}`
            : op === 'poll'
              ? `revents 0x${res.toString(16)}`
              : en
                ? `${res} bytes`
                : `${res} 字节`;
      const goes = more ? (en ? ', more' : '，more') : '';
      return en ? `completion: ${op} on ${e.fd} → ${value}${goes}${conn}` : `完成：${e.fd} 上的 ${op} → ${value}${goes}${conn}`;
    }
  }
}
