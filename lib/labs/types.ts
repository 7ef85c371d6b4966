// What a lab is and what it reports.
import type { Lang } from '../util/i18n';

export interface LabResult {
  /** True when what was measured matches the lesson. */
  ok: boolean;
  /** The observations themselves (counts, times in ms, pids, fds, states, yes/no). */
  measured: Record<string, number | string | boolean>;
}

export interface Lab {
  name: string;
  summary: { en: string; zh: string };
  /** Starts what it needs, drives real clients on 127.0.0.1, prints through `out`; closes everything. */
  run(out: (line: string) => void, lang: Lang): Promise<LabResult>;
}

/**
 * The labs of the traps after the lecture each run a naive server next to its fix. `disarmed`
 * starts the naive one with the fix switched on: the trap cannot happen, and the lab must say that
 * it did not see it (and fail). The tests use it; `posix-servers lab` never does.
 */
export interface TrapOptions {
  disarmed?: boolean;
}
