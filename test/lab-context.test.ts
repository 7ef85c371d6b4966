// What a lab's steps stand on (lib/labs/context.ts): whatever a step started is closed when the
// lab ends, also when a step throws; a traced server's trace is collected and printed as the labs
// print it. Real servers, a real C program, real clients.
import type { ListeningProgram } from '../lib/bench/reference';
import { defineLab, type TracedServer } from '../lib/labs/context';
import type { PosixServer } from '../lib/server/server';
import { formatTrace } from '../lib/trace/format';
import { childrenOf, isAlive, type Client } from './helpers';

const SUMMARY = { en: 'a lab of this test', zh: '本测试的实验' };

describe('defineLab and LabContext', () => {
  test('a step that throws: the lab rejects with its error, and every server, program and client it started is closed', async () => {
    const started: { fork?: TracedServer; thread?: PosixServer; program?: ListeningProgram; client?: Client } = {};
    const lab = defineLab({
      name: 'throws',
      summary: SUMMARY,
      async run(lab) {
        started.fork = await lab.tracedServer({ model: 'fork' });
        started.thread = await lab.server({ model: 'thread' });
        started.program = await lab.program('mmap');
        started.client = await lab.client(started.fork.port);
        await started.client.echo('hi\n');
        throw new Error('a step failed');
      },
    });
    await expect(lab.run(() => undefined, 'en')).rejects.toThrow('a step failed');
    expect(started.fork!.server.listening).toBe(false);
    expect(started.thread!.listening).toBe(false);
    expect(started.client!.sock.destroyed).toBe(true);
    expect(isAlive(started.program!.pid)).toBe(false);
    expect(isAlive(started.fork!.pid)).toBe(false);
    expect(childrenOf(process.pid).filter((c) => c.state !== 'Z')).toEqual([]);
  });

  test('closeAll() between two parts closes the first part only; the second part runs and is closed at the end', async () => {
    let first: PosixServer | undefined;
    let second: PosixServer | undefined;
    let firstClosedBeforeSecondStarted = false;
    const lab = defineLab({
      name: 'two parts',
      summary: SUMMARY,
      async run(lab) {
        first = await lab.server({ model: 'iterative' });
        const a = await lab.client(first.address()!.port);
        await lab.closeAll();
        firstClosedBeforeSecondStarted = !first.listening && a.sock.destroyed;
        second = await lab.server({ model: 'iterative' });
        const b = await lab.client(second.address()!.port);
        return { ok: await b.echoes('two\n'), measured: {} };
      },
    });
    expect(await lab.run(() => undefined, 'en')).toEqual({ ok: true, measured: {} });
    expect(firstClosedBeforeSecondStarted).toBe(true);
    expect(second!.listening).toBe(false);
  });

  test.each(['en', 'zh'] as const)(
    '(%s) say and text speak the lab language; a traced server prints its trace as formatTrace does',
    async (lang) => {
      const lines: string[] = [];
      let expected: string[] = [];
      const lab = defineLab({
        name: 'speaks',
        summary: SUMMARY,
        async run(lab) {
          lab.say('english', '中文');
          lab.out(lab.text('en', 'zh'));
          const server = await lab.tracedServer({ model: 'fork' });
          const client = await lab.client(server.port);
          await client.echo('x\n');
          const fork = await server.first('fork', 'the fork trace');
          expect(server.lfd).toBe(server.startupTrace.find((e) => e.call === 'exec')!.result);
          expect(server.calls('fork')).toEqual([fork]);
          server.print([undefined, fork], '  ');
          expected = [`  ${formatTrace(fork, server.startupTrace[0].timeMs, lang, { masterPid: server.pid })}`];
          return { ok: true, measured: {} };
        },
      });
      await lab.run((l) => lines.push(l), lang);
      expect(lines).toEqual([lang === 'en' ? 'english' : '中文', lang, ...expected]);
      expect(expected[0]).toContain(lang === 'en' ? 'fork()' : '子进程');
    },
  );
});
