// The short label of each mark in the board drawing (lanes.ts): the call and its result in a few
// characters, where format.ts gives the whole line and its note.
import type { TraceEvent } from '../server/events';
import type { Lang } from '../util/i18n';
import { t } from '../util/i18n';
import { interruptingSignal } from './format';
import { uringCompletion, uringEnter } from './uring';

/** What a mark of `e` says on its lane. */
export function shortLabel(e: TraceEvent, lang: Lang): string {
  switch (e.call) {
    case 'socket':
      return `socket → ${e.result}`;
    case 'bind':
      return 'bind';
    case 'listen':
      return 'listen';
    case 'accept':
      return `accept → cfd ${e.result}`;
    case 'accept-eintr': {
      const by = interruptingSignal(e);
      return by === null ? 'EINTR' : `EINTR ← ${by}`;
    }
    case 'fork':
      return `fork → ${e.result}`;
    case 'exec':
      return 'fork + execve';
    case 'close-cfd':
    case 'close-lfd':
    case 'close-conn':
      return `close(${e.fd})`;
    case 'child-exit':
      return `exit(${e.result})`;
    case 'waitpid':
      return `waitpid → ${e.result}`;
    case 'pthread_create':
      return 'pthread_create';
    case 'pthread_detach':
      return 'pthread_detach';
    case 'worker-start':
      return t(lang, { en: `tid ${e.result}: cfd ${e.fd}`, zh: `线程 ${e.result}：cfd ${e.fd}` });
    case 'slots-full':
      return t(lang, { en: `full → close(${e.fd})`, zh: `已满 → close(${e.fd})` });
    case 'shutdown':
      return `shutdown(${e.fd})`;
    case 'pool-fork':
      return t(lang, { en: `fork → worker ${e.worker ?? '?'}`, zh: `fork → 工作进程 ${e.worker ?? '?'}` });
    case 'worker-accept':
      return `accept → cfd ${e.result}`;
    case 'lock-file':
      return 'mkstemp + unlink';
    case 'fcntl-lock':
      return 'fcntl lock';
    case 'fcntl-unlock':
      return 'fcntl unlock';
    case 'mutex-lock':
      return e.errno === 'EOWNERDEAD' ? 'lock: EOWNERDEAD' : 'mutex lock';
    case 'mutex-unlock':
      return 'mutex unlock';
    case 'sendmsg':
      return `sendmsg(cfd ${e.result})`;
    case 'recvmsg':
      return `recvmsg → cfd ${e.result}`;
    case 'worker-idle':
      return t(lang, { en: 'idle', zh: '空闲' });
    case 'close-node-lfd':
      return `close(${e.fd})`;
    case 'epoll_wait':
      return `epoll_wait → ${e.result}`;
    case 'epoll_ctl':
      return 'epoll_ctl';
    case 'epoll_create':
      return `epoll_create → ${e.result}`;
    case 'queue-push':
      return t(lang, { en: `queue ← ${e.fd}`, zh: `入队 ${e.fd}` });
    case 'queue-pop':
      return t(lang, { en: `queue → ${e.fd}`, zh: `出队 ${e.fd}` });
    case 'pthread_join':
      return `pthread_join #${e.worker ?? '?'}`;
    case 'door-pass':
      return t(lang, { en: 'door: in', zh: '门禁：放行' });
    case 'door-refuse':
      return t(lang, { en: `door: ${e.reason ?? 'refused'}`, zh: `门禁：拒绝（${e.reason ?? e.result}）` });
    case 'dup2':
      return `dup2(${e.fd}, ${e.result})`;
    case 'execve':
      return `execve(${(e.program ?? '?').split('/').pop()})`;
    case 'io_uring_setup':
      return `io_uring_setup → ${e.result}`;
    case 'io_uring_register':
      return e.result % 256 === 22 ? t(lang, { en: 'register buffers', zh: '登记缓冲区' }) : 'enable ring';
    case 'io_uring_enter': {
      const { submitted, completions } = uringEnter(e);
      return t(lang, { en: `enter: ${submitted} in, ${completions} out`, zh: `enter：提交 ${submitted}，完成 ${completions}` });
    }
    case 'uring-arm': {
      const what = ({ 1: 'accept', 4: 'poll', 5: 'accept', 6: 'poll' } as Record<number, string>)[e.result % 256] ?? 'recv';
      return t(lang, {
        en: `${e.result >= 256 ? 're-arm' : 'arm'} ${what}`,
        zh: `${e.result >= 256 ? '重新提交' : '提交'} ${what}`,
      });
    }
    case 'uring-cancel':
      return `cancel(${e.fd})`;
    case 'uring-cqe': {
      const { op, res } = uringCompletion(e);
      return `cqe ${op} ${res}`;
    }
  }
}
