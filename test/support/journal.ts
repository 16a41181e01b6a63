import { readFile } from 'node:fs/promises';

export interface JournalEntry {
  kind: 'call' | 'apply';
  runId: string;
  iteration: number;
  stage: string;
}

/** Reads the journal the recording stages append to (one line per call and per applied output). */
export async function readJournal(path: string): Promise<JournalEntry[]> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, runId, iteration, stage] = line.split(' ');
      return { kind: kind as JournalEntry['kind'], runId: runId!, iteration: Number(iteration), stage: stage! };
    });
}

/**
 * How many times each stage of each iteration of `runId` wrote its output: `{ "0 execute": 1 }`.
 * Filtered by run, because a worker also serves whatever other workflows the server holds.
 */
export function appliedCounts(entries: JournalEntry[], runId: string): Record<string, number> {
  return countsOf(entries, runId, 'apply');
}

/**
 * How many times the workflow called each stage of each iteration of `runId`. Unlike
 * `appliedCounts`, a stage run again after it had completed shows here.
 */
export function callCounts(entries: JournalEntry[], runId: string): Record<string, number> {
  return countsOf(entries, runId, 'call');
}

function countsOf(entries: JournalEntry[], runId: string, kind: JournalEntry['kind']): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of entries) if (e.kind === kind && e.runId === runId) counts[`${e.iteration} ${e.stage}`] = (counts[`${e.iteration} ${e.stage}`] ?? 0) + 1;
  return counts;
}
