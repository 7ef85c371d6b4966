// jest's globalSetup: a fresh file for this run's skip notices (test/external.ts appends to it,
// test/external-summary.ts prints them at the end). The workers inherit its name by environment.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SKIP_LOG_ENV } from './external-summary';

export default function makeSkipLog(): void {
  const log = join(mkdtempSync(join(tmpdir(), 'posix-servers-skips-')), 'notices.jsonl');
  writeFileSync(log, '');
  process.env[SKIP_LOG_ENV] = log;
}
