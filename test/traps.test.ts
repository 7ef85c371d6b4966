// The traps after the lecture: each lab passes on what it measured, in both languages, and fails —
// saying that it did not see the trap — when its naive server is started with the fix switched on.
import { spawnSync } from 'node:child_process';
import { programBinary } from '../lib/bench/reference';
import { backlogLab, backlogLabWith } from '../lib/labs/backlog';
import { lingeringCloseLab, lingeringCloseLabWith } from '../lib/labs/lingering-close';
import { nagleLab, nagleLabWith } from '../lib/labs/nagle';
import { sigpipeLab, sigpipeLabWith } from '../lib/labs/sigpipe';
import { timeWaitLab, timeWaitLabWith } from '../lib/labs/time-wait';
import { tcpExtCounters } from '../lib/labs/kit';
import { runLabIn, runLabInOwnNetwork } from './helpers';

const LANGS = ['en', 'zh'] as const;
const NO_TRAP = { en: 'The trap did not happen', zh: '陷阱没有出现' };
const LESSON = { en: 'Lesson: ', zh: '结论：' };

describe('time-wait', () => {
  test.each(LANGS)(
    '(%s) TIME_WAIT on the side that closed first; bind() on its port: EADDRINUSE without SO_REUSEADDR, bound with it (and by the models); Linux asks it of the old connections too',
    async (lang) => {
      // The lab needs a few TIME_WAIT rows: none are left when the table is full, so it runs in a
      // network namespace of its own (helpers: inOwnNetwork).
      const { result, lines } = await runLabInOwnNetwork(timeWaitLab.name, lang);
      const m = result.measured;
      expect(m).toMatchObject({
        connections: 3,
        clientClosesFirstOnClients: 3,
        clientClosesFirstOnServer: 0,
        serverClosesFirstOnServer: 3,
        serverClosesFirstOnClients: 0,
        restartWithoutReuseaddr: 'EADDRINUSE',
        restartWithReuseaddr: 'bound',
        restartForkModel: 'bound',
        restartNodeModel: 'bound',
        oldWithoutRestartWith: 'EADDRINUSE',
      });
      expect(m.rowsAtRestart as number).toBeGreaterThan(0);
      // The kernel's timer of a fresh TIME_WAIT row: Linux's 60 s, counting down.
      expect(m.timeWaitSecondsLeft as number).toBeGreaterThan(50);
      expect(m.timeWaitSecondsLeft as number).toBeLessThanOrEqual(60);
      expect(result.ok).toBe(true);
      expect(lines.join('\n')).toContain(LESSON[lang]);
      expect(lines.join('\n')).not.toContain(NO_TRAP[lang]);
    },
    300000,
  );

  test.each(LANGS)(
    '(%s) disarmed (the naive server sets SO_REUSEADDR): every restart binds, and the lab says it saw no trap',
    async (lang) => {
      const { result, lines } = await runLabIn(timeWaitLabWith({ disarmed: true }), lang);
      expect(result.measured).toMatchObject({ restartWithoutReuseaddr: 'bound', oldWithoutRestartWith: 'bound' });
      expect(result.ok).toBe(false);
      expect(lines.join('\n')).toContain(NO_TRAP[lang]);
    },
  );
});

describe('backlog', () => {
  test.each(LANGS)(
    '(%s) listen(fd, 4): 5 queued, the 6th SYN dropped (ListenOverflows, SYN_SENT), its connect() a retransmission later; accept() drains all',
    async (lang) => {
      const { result, lines } = await runLabIn(backlogLab, lang);
      const m = result.measured;
      expect(m).toMatchObject({
        backlog: 4,
        backlogInKernel: 4, // sock_diag's limit of the listener: listen()'s backlog as the kernel keeps it
        acceptQueueFull: 5,
        droppedClientSynSent: true,
        acceptedAfterDrain: 7,
        acceptQueueAfterDrain: 0,
      });
      expect(m.listenOverflows as number).toBeGreaterThanOrEqual(1);
      expect(m.listenDrops as number).toBeGreaterThanOrEqual(1);
      expect(m.tcpSynRetrans as number).toBeGreaterThanOrEqual(1);
      // The initial retransmission timeout is 1 s, and a kernel timer never fires early.
      expect(m.droppedConnectMs as number).toBeGreaterThanOrEqual(900);
      expect((m.droppedConnectMs as number) - (m.baselineConnectMs as number)).toBeGreaterThanOrEqual(800);
      // The SYN's retransmission timer, pending when the row was read: under a second away (two
      // seconds at most, should a loaded machine read it after a first retransmission).
      expect(m.synRetransmitInS as number).toBeGreaterThan(0);
      expect(m.synRetransmitInS as number).toBeLessThanOrEqual(2);
      expect(result.ok).toBe(true);
      expect(lines.join('\n')).toContain(LESSON[lang]);
    },
  );

  test.each(LANGS)(
    '(%s) disarmed (the server accepts from the start): no queue, no dropped SYN — and the lab says so',
    async (lang) => {
      const { result, lines } = await runLabIn(backlogLabWith({ disarmed: true }), lang);
      const m = result.measured;
      expect(m.acceptQueueFull as number).toBeLessThan(5);
      expect(m.droppedClientSynSent).toBe(false);
      expect(result.ok).toBe(false);
      expect(lines.join('\n')).toContain(NO_TRAP[lang]);
    },
  );
});

describe('sigpipe', () => {
  test.each(LANGS)(
    '(%s) the naive server dies of SIGPIPE (its next client is refused); MSG_NOSIGNAL and SIG_IGN get EPIPE and serve on; the models ignore it',
    async (lang) => {
      const { result, lines } = await runLabIn(sigpipeLab, lang);
      expect(result.measured).toMatchObject({
        naiveIgnoresSigpipe: false,
        naiveEnd: 'SIGPIPE',
        naiveNextClient: 'ECONNREFUSED',
        nosignalEnd: 'alive',
        nosignalErrno: 'EPIPE',
        nosignalNextLines: 10,
        ignoreIgnoresSigpipe: true,
        ignoreEnd: 'alive',
        ignoreErrno: 'EPIPE',
        ignoreNextLines: 10,
        nodeIgnoresSigpipe: true,
        forkMasterIgnoresSigpipe: true,
        forkChildSignal: 'none',
        forkNextServed: true,
      });
      expect(result.measured.naiveSent as number).toBeGreaterThanOrEqual(1);
      expect(result.ok).toBe(true);
      expect(lines.join('\n')).toContain(LESSON[lang]);
    },
  );

  test.each(LANGS)(
    '(%s) disarmed (the naive server sends with MSG_NOSIGNAL): it lives, and the lab says it saw no trap',
    async (lang) => {
      const { result, lines } = await runLabIn(sigpipeLabWith({ disarmed: true }), lang);
      expect(result.measured).toMatchObject({ naiveEnd: 'alive', naiveNextClient: 10 });
      expect(result.ok).toBe(false);
      expect(lines.join('\n')).toContain(NO_TRAP[lang]);
    },
  );
});

describe('nagle', () => {
  test.each(LANGS)(
    '(%s) two small writes wait for the delayed ACK (≥ 30 ms a request, DelayedACKs counted); TCP_NODELAY and writev are ten times faster and more',
    async (lang) => {
      const before = tcpExtCounters().get('DelayedACKs') ?? 0;
      const { result, lines } = await runLabIn(nagleLab, lang);
      const m = result.measured;
      expect(m.requests).toBe(30);
      expect(m.twoWritesMedianMs as number).toBeGreaterThanOrEqual(30);
      expect(m.twoWritesSlow as number).toBeGreaterThanOrEqual(15);
      expect(m.twoWritesDelayedAcks as number).toBeGreaterThanOrEqual(15);
      expect((tcpExtCounters().get('DelayedACKs') ?? 0) - before).toBeGreaterThanOrEqual(m.twoWritesDelayedAcks as number);
      expect((m.nodelayMedianMs as number) * 10).toBeLessThanOrEqual(m.twoWritesMedianMs as number);
      expect((m.writevMedianMs as number) * 10).toBeLessThanOrEqual(m.twoWritesMedianMs as number);
      expect(result.ok).toBe(true);
      expect(lines.join('\n')).toContain(LESSON[lang]);
    },
  );

  test.each(LANGS)(
    '(%s) disarmed (TCP_NODELAY on the naive server): no request waits, and the lab says it saw no trap',
    async (lang) => {
      const { result, lines } = await runLabIn(nagleLabWith({ disarmed: true }), lang);
      expect(result.measured.twoWritesMedianMs as number).toBeLessThan(30);
      expect(result.ok).toBe(false);
      expect(lines.join('\n')).toContain(NO_TRAP[lang]);
    },
  );
});

describe('lingering-close', () => {
  test.each(LANGS)(
    '(%s) close() with unread bytes: RST, the reply cut and read() → ECONNRESET; shutdown, read to EOF, close: all of it, EOF',
    async (lang) => {
      const { result, lines } = await runLabIn(lingeringCloseLab, lang);
      const m = result.measured;
      expect(m).toMatchObject({
        replyBytes: 1 << 20,
        bodyBytes: 16384,
        plainUnreadAtClose: 16384,
        plainClientRead: 'ECONNRESET',
        lingerUnreadAtShutdown: 16384,
        lingerDrained: 16384,
        lingerDrainedUntil: 'eof',
        lingerReceived: 1 << 20,
        lingerClientRead: 'EOF',
      });
      expect(m.plainReceived as number).toBeLessThan(1 << 20);
      expect(m.plainLost as number).toBeGreaterThan(0);
      expect(m.plainAbortOnClose as number).toBeGreaterThanOrEqual(1);
      expect(result.ok).toBe(true);
      expect(lines.join('\n')).toContain(LESSON[lang]);
    },
  );

  test.each(LANGS)(
    '(%s) disarmed (the naive server lingers): the whole reply and EOF, and the lab says it saw no trap',
    async (lang) => {
      const { result, lines } = await runLabIn(lingeringCloseLabWith({ disarmed: true }), lang);
      expect(result.measured).toMatchObject({ plainReceived: 1 << 20, plainClientRead: 'EOF', plainLost: 0 });
      expect(result.ok).toBe(false);
      expect(lines.join('\n')).toContain(NO_TRAP[lang]);
    },
  );
});

describe("the traps' C programs", () => {
  test('a bad option is one line on stderr and exit 2, nothing started', () => {
    const cases: Array<[string, string[]]> = [
      ['time-wait', ['--reuseaddr', 'maybe']],
      ['backlog', []],
      ['backlog', ['--backlog', '-1']],
      ['backlog', ['--backlog', '4', '--accept', 'never']],
      ['sigpipe', ['--sigpipe', 'catch']],
      ['nagle', ['--write', 'three']],
      ['nagle', ['--nodelay', 'on']],
      ['lingering-close', ['--close', 'abort']],
      ['lingering-close', ['--reply', '0']],
      ['read-client', []],
    ];
    for (const [name, args] of cases) {
      const r = spawnSync(programBinary('labs', name), args, { encoding: 'utf8', timeout: 5000 });
      expect({ name, args, status: r.status, stdout: r.stdout }).toEqual({ name, args, status: 2, stdout: '' });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
