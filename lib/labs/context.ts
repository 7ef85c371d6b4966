// What every lab does around its lesson, so that a lab's file is only the lesson's steps: it speaks
// the reader's language, starts servers, C programs and clients that are all closed at the end
// whatever happens, and watches a server's trace. A lab is written with defineLab(); its run() is
// the lecture's sequence of steps, each a function of this context that prints its own lines and
// returns what it measured.
import { programBinary, startProgram, type ListeningProgram } from '../bench/reference';
import type { TraceEvent } from '../server/events';
import type { ServerOptions } from '../server/options';
import type { PosixServer, ServerStats } from '../server/server';
import { formatTrace } from '../trace/format';
import { sayer, type Lang } from '../util/i18n';
import { Client, closeAll, destroyAll, portOf, startServer, waitFor } from './kit';
import type { Lab, LabResult } from './types';

export class LabContext {
  /** `say(en, zh)`: prints the message in the reader's language. */
  readonly say: (en: string, zh: string) => void;
  #servers: PosixServer[] = [];
  #programs: ListeningProgram[] = [];
  #clients: Client[] = [];

  constructor(
    readonly out: (line: string) => void,
    readonly lang: Lang,
  ) {
    this.say = sayer(out, lang);
  }

  /** The message in the reader's language (for a piece of a line). */
  text(en: string, zh: string): string {
    return this.lang === 'en' ? en : zh;
  }

  /** Starts a server (drawn by `lab --svg/--ui`, see kit.startServer), closed by closeAll(). */
  async server(options: ServerOptions): Promise<PosixServer> {
    const server = await startServer(options);
    this.#servers.push(server);
    return server;
  }

  /** Starts a server with `trace: true` and collects its trace from the first call on. */
  async tracedServer(options: ServerOptions): Promise<TracedServer> {
    return new TracedServer(await this.server({ ...options, trace: true }), this);
  }

  /** Starts the lab's own C server `native/labs/<name>.c` (built into build/labs/) with `args`, closed by closeAll(). */
  async program(name: string, args: string[] = []): Promise<ListeningProgram> {
    const program = await startProgram(`lab server ${name}`, programBinary('labs', name), args);
    this.#programs.push(program);
    return program;
  }

  /** Connects a client to 127.0.0.1:`port` (within `timeoutMs`); it is destroyed by closeAll(). */
  async client(port: number, timeoutMs?: number): Promise<Client> {
    const client = await Client.open(port, timeoutMs);
    this.#clients.push(client);
    return client;
  }

  /**
   * Ends every client, then closes every program and server started so far (those already closed
   * are skipped). Between two parts of a lab, so that the next part runs alone; and at its end.
   */
  async closeAll(): Promise<void> {
    destroyAll(this.#clients.splice(0));
    for (const program of this.#programs.splice(0)) await program.close();
    await closeAll(this.#servers.splice(0));
  }
}

/** A lab whose run() is a sequence of steps on a LabContext; everything it started is closed at the end. */
export function defineLab(definition: {
  name: string;
  summary: { en: string; zh: string };
  run(lab: LabContext): Promise<LabResult>;
}): Lab {
  return {
    name: definition.name,
    summary: definition.summary,
    async run(out, lang) {
      const context = new LabContext(out, lang);
      try {
        return await definition.run(context);
      } finally {
        await context.closeAll();
      }
    },
  };
}

/** A server started with `trace: true`: its trace as it arrives, and its trace lines printed. */
export class TracedServer {
  /** Every 'trace' event after startServer() resolved, in order (the earlier ones: startupTrace). */
  readonly trace: TraceEvent[] = [];
  readonly port: number;
  readonly #lab: LabContext;

  constructor(
    readonly server: PosixServer,
    lab: LabContext,
  ) {
    this.#lab = lab;
    this.port = portOf(server);
    server.on('trace', (e) => this.trace.push(e));
  }

  /** Fork model: the master's pid; otherwise Node's. */
  get pid(): number {
    return this.server.pid;
  }

  /** The calls made before startServer() resolved (socket, bind, listen, the master's exec…). */
  get startupTrace(): TraceEvent[] {
    return this.server.startupTrace;
  }

  stats(): ServerStats {
    return this.server.stats();
  }

  /** The time the trace lines count from: the first startup call's. */
  get t0(): number {
    return this.server.startupTrace[0]?.timeMs ?? 0;
  }

  /**
   * The listening socket's descriptor in the process that accepts: Node made it, and the exec'd
   * fork master has it at the descriptor execve reports; in-process, socket()'s own. -1 if untraced.
   */
  get lfd(): number {
    const startup = this.server.startupTrace;
    return (this.server.model === 'fork' ? startup.find((e) => e.call === 'exec') : startup[0])?.result ?? -1;
  }

  /** The events of one call so far, in order, that pass `where`. */
  calls(call: string, where: (e: TraceEvent) => boolean = () => true): TraceEvent[] {
    return this.trace.filter((e) => e.call === call && where(e));
  }

  /** The first event of `call` that passes `where`, waited for up to `timeoutMs` (throws naming `what`). */
  async first(call: string, what: string, where: (e: TraceEvent) => boolean = () => true, timeoutMs = 2000): Promise<TraceEvent> {
    await waitFor(() => this.trace.some((e) => e.call === call && where(e)), timeoutMs, what);
    return this.trace.find((e) => e.call === call && where(e))!;
  }

  /** Waits until at least `n` events of `call` have arrived (throws naming `what`); returns them all. */
  async atLeast(n: number, call: string, what: string, timeoutMs = 2000): Promise<TraceEvent[]> {
    await waitFor(() => this.calls(call).length >= n, timeoutMs, what);
    return this.calls(call);
  }

  /** Prints each event as a trace line after `indent` (absent ones skipped); a fork server's roles exact. */
  print(events: Array<TraceEvent | undefined>, indent: string): void {
    const ctx = this.server.model === 'fork' ? { masterPid: this.server.pid } : {};
    for (const e of events) if (e) this.#lab.out(`${indent}${formatTrace(e, this.t0, this.#lab.lang, ctx)}`);
  }
}
