// The server's footprint while a load runs: its process tree sampled in /proc every 100 ms, the
// peaks of its processes, threads and resident memory.
import { readFileSync } from 'node:fs';
import { descendantsOf } from '../util/proc';

/** What /proc showed of the server side while the load ran (peaks over 100 ms samples). */
export interface ServerFootprint {
  processes: number;
  threads: number;
  rssMb: number;
}

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Samples the server's process tree every 100 ms until stopped; returns the peaks. */
export function watchFootprint(rootPid: number): () => ServerFootprint {
  const peak: ServerFootprint = { processes: 0, threads: 0, rssMb: 0 };
  const sample = () => {
    const pids = descendantsOf(rootPid);
    let threads = 0;
    let rssKb = 0;
    for (const p of pids) {
      threads += statusField(p, 'Threads');
      rssKb += statusField(p, 'VmRSS');
    }
    peak.processes = Math.max(peak.processes, pids.length);
    peak.threads = Math.max(peak.threads, threads);
    peak.rssMb = Math.max(peak.rssMb, Math.round(rssKb / 102.4) / 10);
  };
  sample();
  const timer = setInterval(sample, 100);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}
