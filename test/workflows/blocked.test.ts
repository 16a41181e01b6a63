import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { freePort } from '../../infra/process.js';
import { startOrAttach } from '../../cli/follow-run.js';
import { progressQuery } from '../../workflows/run-control.js';
import { blockedAttribute, stageAttribute } from '../../workflows/search-attributes.js';
import type { codeA1Training } from '../../workflows/training.js';
import { connectClient } from '../support/temporal.js';
import { cli, cliEnv, scrape } from '../support/cli.js';
import { rawConfig, tempDir } from '../support/config.js';
import { appliedCounts, callCounts, readJournal } from '../support/journal.js';
import { startScript, until } from '../support/processes.js';
import type { Child } from '../support/processes.js';

describe('a stage that keeps failing with an unclassified error', () => {
  let client: Client;
  let close: () => Promise<void>;
  let worker: Child;
  let dir: string;
  let metrics: string;
  let handle: WorkflowHandle<typeof codeA1Training>;
  let raw: ReturnType<typeof rawConfig>;
  let runId: string;

  before(async () => {
    dir = await tempDir();
    metrics = `127.0.0.1:${await freePort()}`;
    worker = await startScript('test/support/failing-stage-worker.ts', [dir], { ...cliEnv, CODE_A1_METRICS_ADDRESS: metrics });
    ({ client, close } = await connectClient());
    raw = rawConfig(`${dir}/store`, { iterations: 2, retries: { bookkeeping: 3, initialIntervalSeconds: 0.1, maximumIntervalSeconds: 0.2 } });
    runId = raw.runId;
    // Iteration 1's score stage fails until the switch is removed ("the disk is cleaned up").
    await writeFile(`${dir}/fail.1.score`, '');
    handle = await startOrAttach(client, runId, { config: raw });
    await until('the run to block', async () => Boolean((await handle.query(progressQuery)).blocked), 120_000);
  });

  after(async () => {
    await handle?.terminate('test over').catch(() => undefined);
    worker?.process.kill('SIGTERM');
    await worker?.process.catch(() => undefined);
    await close?.();
  });

  it('blocks the run after its budget: the query names the stage, the attempts and the error', async () => {
    const { blocked, completedIterations } = await handle.query(progressQuery);
    assert.equal(completedIterations, 1);
    assert.equal(blocked?.iteration, 1);
    assert.equal(blocked?.stage, 'score');
    assert.equal(blocked?.activity, 'score');
    assert.equal(blocked?.reason, 'budget');
    assert.equal(blocked?.attempts, 3);
    assert.match(blocked?.error ?? '', /ENOSPC: no space left on device/);
    assert.ok(!Number.isNaN(Date.parse(blocked?.since ?? '')), 'since is a time');
    const failed = (await readFile(`${dir}/failed-attempts`, 'utf8')).trim().split('\n');
    assert.equal(failed.length, 3, 'three attempts, then no more');
  });

  it('shows it in the search attributes, the Prometheus gauge and the workflow details', async () => {
    await until('the search attributes to say blocked', async () => {
      const described = await handle.describe();
      return described.typedSearchAttributes.get(blockedAttribute) === true && described.typedSearchAttributes.get(stageAttribute) === 'score';
    });
    const listed: string[] = [];
    await until('visibility to list the run as blocked', async () => {
      listed.length = 0;
      for await (const w of client.workflow.list({ query: `CodeA1Blocked = true AND WorkflowId = '${runId}'` })) listed.push(w.workflowId);
      return listed.length === 1;
    });
    assert.deepEqual(await scrape(metrics, 'code_a1_run_blocked', { run_id: runId }), [1]);
  });

  it('shows it in report and ends a follow with exit status 3 and the retry command', async () => {
    const report = await cli(['report', runId, '--storage', `file://${dir}/store`, '--out', `${dir}/report.html`]);
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stderr, /Blocked: 1 iteration complete; blocked since .* in iteration 1, stage score \(score\) after 3 attempts: Error: ENOSPC/);
    assert.match(await readFile(`${dir}/report.html`, 'utf8'), /data-state="blocked"/);
    const follow = await cli(['resume', runId, '--config', await configFile()]);
    assert.equal(follow.code, 3, follow.stderr);
    assert.match(follow.stderr, new RegExp(`npx code-a1 retry ${runId}`));
    assert.doesNotMatch(follow.stderr, /^\s+at /m);
  });

  it('retry after the cause is removed completes the run, nothing run twice', async () => {
    await rm(`${dir}/fail.1.score`);
    const retried = await cli(['retry', runId]);
    assert.equal(retried.code, 0, retried.stderr);
    const final = await handle.result();
    assert.equal(final.completedIterations, 2);
    assert.equal(final.blocked, null);
    const journal = await readJournal(`${dir}/journal`);
    const applied = appliedCounts(journal, runId);
    const calls = callCounts(journal, runId);
    const stages = ['sampleBatch', 'generateCode', 'generateTests', 'execute', 'score', 'updateMistakeBook'];
    for (const iteration of [0, 1]) for (const stage of stages) assert.ok(applied[`${iteration} ${stage}`], `iteration ${iteration} ${stage} written`);
    // Every activity of both iterations (publishing and training per role included) ran and wrote once:
    // the retry ran the blocked stage, not the ones before it.
    assert.deepEqual(Object.values(applied).filter((n) => n !== 1), [], JSON.stringify(applied));
    assert.deepEqual(Object.values(calls).filter((n) => n !== 1), [], JSON.stringify(calls));
    assert.deepEqual(Object.keys(calls).sort(), Object.keys(applied).sort());
    const described = await handle.describe();
    assert.equal(described.typedSearchAttributes.get(blockedAttribute), false);
    assert.deepEqual(await scrape(metrics, 'code_a1_run_blocked', { run_id: runId }), [0]);
  });

  it('refuses to retry a run that is not blocked, with the reason', async () => {
    const refused = await cli(['retry', runId]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /no running run|is not blocked/);
  });

  async function configFile(): Promise<string> {
    const path = `${dir}/config.json`;
    await writeFile(path, JSON.stringify(raw));
    return path;
  }
});
