import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ReportInput } from './render.js';
import { renderReport } from './render.js';

/** `reports/<runId>.html` under the current directory: run IDs are file-name safe by their schema. */
export function defaultReportPath(runId: string): string {
  return resolve('reports', `${runId}.html`);
}

/** Renders the report to `path` (creating its folder) and returns the absolute path written. */
export async function writeReport(path: string, input: ReportInput): Promise<string> {
  const absolute = resolve(path);
  await mkdir(dirname(absolute), { recursive: true });
  await writeFile(absolute, renderReport(input));
  return absolute;
}
