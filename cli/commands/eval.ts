import { parseArgs } from 'node:util';
import { Client, WorkflowFailedError } from '@temporalio/client';
import type { Command } from '../command.js';
import { readConfigFile } from '../config-file.js';
import { UsageError } from '../command.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { connectTemporal } from '../temporal.js';
import { parseEvaluationConfig } from '../../activities/evaluation/config.js';
import type { BenchmarkScore } from '../../activities/evaluation/pass-at-k.js';
import type { TestGenerationReport } from '../../workflows/evaluate.js';
import { taskQueues } from '../../workflows/contract.js';
import { codeA1Evaluate, evaluationWorkflowId } from '../../workflows/evaluate.js';
import { parseCommandLine } from './exec.js';
import { cleared, evaluationPlan } from '../preflight/index.js';

/**
 * Starts a Code LLM evaluation (or attaches to the running one with the same evalId; a finished
 * one started again returns its stored report), waits for it and prints the report as JSON on
 * stdout, with a table of the scores on stderr.
 */
const evaluate: Command = {
  summary: 'eval --config FILE [--detach] [--skip-preflight]: evaluate a model endpoint on a dataset\'s golden tests (avg@n, pass@k)',
  async run(argv) {
    const { values } = parseCommandLine(() =>
      parseArgs({
        args: argv,
        options: { config: { type: 'string' }, detach: { type: 'boolean', default: false }, 'skip-preflight': { type: 'boolean', default: false } },
        strict: true,
        allowPositionals: false,
      }),
    );
    if (!values.config) throw new UsageError('--config FILE is required');
    const { raw, config } = await readConfigFile(values.config, parseEvaluationConfig);
    const { evalId } = config;
    const env = parseWorkerEnv(process.env);
    const connection = await connectTemporal(env.temporal);
    try {
      const client = new Client({ connection, namespace: env.namespace });
      // stdout carries the report's JSON; the checks go to stderr with the rest of the progress.
      if (!(await cleared('eval', evaluationPlan(config), { env, client, skip: values['skip-preflight'], print: (line) => console.error(line) }))) return 1;
      const handle = await client.workflow.start(codeA1Evaluate, {
        taskQueue: taskQueues.orchestration,
        workflowId: evaluationWorkflowId(evalId),
        args: [{ config: raw }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      console.error(`evaluation ${evalId}: workflow ${handle.workflowId} on ${env.temporalAddress} (namespace ${env.namespace})`);
      if (values.detach) return 0;
      try {
        const report = await handle.result();
        console.error(scoreTable(report.benchmarks));
        if (report.testGeneration) console.error(`\n${testTable(report.testGeneration)}`);
        console.log(JSON.stringify(report));
        return 0;
      } catch (err) {
        if (!(err instanceof WorkflowFailedError)) throw err;
        console.error(`evaluation ${evalId} failed: ${err.cause?.message ?? err.message}`);
        return 1;
      }
    } finally {
      await connection.close();
    }
  },
};
export default evaluate;

/** Percentages, as the paper reports them. */
export function scoreTable(benchmarks: readonly BenchmarkScore[]): string {
  const ks = [...new Set(benchmarks.flatMap((b) => Object.keys(b.passAtK)))].sort((a, b) => Number(a) - Number(b));
  const header = ['benchmark', 'problems', 'n', 'avg@n', ...ks.map((k) => `pass@${k}`)];
  const rows = benchmarks.map((b) => [
    b.dataSource,
    String(b.problems),
    String(b.samples),
    (b.avgAtN * 100).toFixed(2),
    ...ks.map((k) => (b.passAtK[k] === undefined ? '-' : (b.passAtK[k] * 100).toFixed(2))),
  ]);
  return table(header, rows);
}

/** The Test LLM's figures, already in percent. */
export function testTable(report: TestGenerationReport): string {
  const k = report.responsesPerProblem;
  const header = ['benchmark', 'problems', `pass@${k}`, `mut@${k}`, 'Mul'];
  const row = (name: string, s: { problems: number; passAtK: number; mutAtK: number; mul: number }) =>
    [name, String(s.problems), s.passAtK.toFixed(2), s.mutAtK.toFixed(2), s.mul.toFixed(2)];
  return table(header, [...report.benchmarks.map((b) => row(b.dataSource, b)), ...(report.benchmarks.length > 1 ? [row('all', report.overall)] : [])]);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padStart(widths[i]!)).join('  ')).join('\n');
}
