// The live view: a small page on 127.0.0.1 (never another address) that shows the recorded servers
// as they run. node:http serves the page (page.ts, plain HTML and JavaScript: no build step) and
// a Server-Sent Events stream: a snapshot when the page connects, then each server's new state
// when it changes and each new timeline line. It reads what the recorder already receives and
// /proc, on Node's JS thread: nothing of it runs on a server's accept or data path.
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Recorder } from '../trace/recording';
import type { Lang } from '../util/i18n';
import { integerIn } from '../util/validate';
import { pageHtml } from './page';
import { LiveState, ViewLine } from './state';

const UI_HOST = '127.0.0.1';

// Row changes sent one by one, at most this many a second (see #changed).
const ROW_SENDS_PER_S = 200;

interface LiveViewOptions {
  /** 0..65535 on 127.0.0.1. Default 0: the kernel picks one. */
  port?: number;
  lang?: Lang;
}

export class LiveView {
  readonly url: string;
  readonly port: number;
  #http: Server;
  #state: LiveState;
  #streams = new Set<ServerResponse>();
  #pending = new Set<number>();
  #flushScheduled = false;
  #opened: Array<() => void> = [];
  #windowStart = 0;
  #sentInWindow = 0;
  #seenClient = false;

  private constructor(http: Server, recorder: Recorder, lang: Lang) {
    this.#http = http;
    this.port = (http.address() as AddressInfo).port;
    this.url = `http://${UI_HOST}:${this.port}/`;
    this.#state = new LiveState(
      recorder,
      lang,
      (index, rows) => this.#changed(index, rows),
      (line) => this.#send('line', line),
    );
    http.on('request', (req, res) => this.#serve(req, res));
  }

  /** Listens on 127.0.0.1:port and serves the page for `recorder`'s servers. */
  static async start(recorder: Recorder, options: LiveViewOptions = {}): Promise<LiveView> {
    const port = integerIn('port', options.port ?? 0, 0, 65535);
    const http = createServer();
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, UI_HOST, () => {
        http.off('error', reject);
        resolve();
      });
    });
    return new LiveView(http, recorder, options.lang ?? 'en');
  }

  /** Resolves once a page has opened the event stream (at once if one already has). */
  pageOpened(): Promise<void> {
    if (this.#seenClient) return Promise.resolve();
    return new Promise((resolve) => this.#opened.push(resolve));
  }

  /** Pages connected now. */
  get pages(): number {
    return this.#streams.size;
  }

  /** Ends the streams and stops listening. */
  async close(): Promise<void> {
    this.#state.stop();
    for (const s of this.#streams) s.end();
    this.#streams.clear();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    // Only this machine's browser, by name: a page elsewhere that resolves its own name to
    // 127.0.0.1 (DNS rebinding) sends its own Host header and gets nothing.
    const host = req.headers.host ?? '';
    if (host !== `${UI_HOST}:${this.port}` && host !== `localhost:${this.port}`) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden\n');
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') {
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        .end(pageHtml(this.#state.lang));
    } else if (path === '/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write(`event: snapshot\ndata: ${JSON.stringify(this.#state.snapshot())}\n\n`);
      this.#streams.add(res);
      req.on('close', () => this.#streams.delete(res));
      this.#seenClient = true;
      for (const w of this.#opened.splice(0)) w();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  // A row that changed (a client came or left, a child became a zombie) is sent at once, so
  // that the page shows every step even when the events arrive in one batch — up to
  // ROW_SENDS_PER_S a second; past that (a flood of connections), and for the counters, the
  // changes of one turn of the event loop become one message per server.
  #changed(index: number, rows: boolean): void {
    const now = performance.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#sentInWindow = 0;
    }
    if (rows && this.#streams.size > 0 && this.#sentInWindow < ROW_SENDS_PER_S) {
      this.#sentInWindow++;
      this.#pending.delete(index);
      const view = this.#state.view(index);
      if (view) this.#send('server', view);
      return;
    }
    this.#pending.add(index);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      for (const i of [...this.#pending].sort((a, b) => a - b)) {
        const view = this.#state.view(i);
        if (view) this.#send('server', view);
      }
      this.#pending.clear();
    });
  }

  #send(event: 'server' | 'line', data: object | ViewLine): void {
    if (this.#streams.size === 0) return;
    const msg = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const s of this.#streams) s.write(msg);
  }
}
