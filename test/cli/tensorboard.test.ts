import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { curveKeys, eventFileName } from '../../activities/curves/index.js';
import { openStore } from '../../activities/storage/index.js';
import { tempDir, uniqueRunId } from '../support/config.js';
import { testBucket, testS3Connection } from '../support/s3.js';
import { curveRecorder, iterationInput, readCurves } from '../support/tensorboard.js';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));
const dir = await tempDir('code-a1-tensorboard-');
after(() => rm(dir, { recursive: true, force: true }));

async function codeA1(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { cwd: dir, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('code-a1 tensorboard', () => {
  it('copies the stored curves, writes those the worker could not from their records, and prints the command', async () => {
    const storageUri = `file://${join(dir, 'store')}`;
    const runId = uniqueRunId('sync');
    const { record } = curveRecorder();
    await record(iterationInput(storageUri, runId, 0, 0.25));
    await record(iterationInput(storageUri, runId, 1, 0.5));
    // Iteration 2's writer failed on the worker: a record, a note, no event file.
    const broken = curveRecorder({ curves: { python: join(dir, 'no-such-python') } });
    await broken.record(iterationInput(storageUri, runId, 2, 0.75));
    assert.equal(await openStore(storageUri).exists(curveKeys.eventFile(runId, 2)), false);
    // A file of an earlier run under the same ID, which this run never reached.
    const local = join(dir, 'tensorboard', runId);
    await mkdir(local, { recursive: true });
    await writeFile(join(local, eventFileName(9)), 'stale');

    const { code, stdout, stderr } = await codeA1(['tensorboard', runId, '--storage', storageUri]);
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n');
    assert.equal(lines[0], `run ${runId}: 3 completed iterations, 2 event files from ${storageUri}/${curveKeys.dir(runId)}`);
    assert.match(lines[1]!, /^iteration 2: no stored event file \(the worker's writer failed: cannot run .*no-such-python.*\); written here from its record$/);
    assert.equal(lines[2], `curves: ${local}`);
    assert.match(lines[3]!, new RegExp(`^view: \\S*tensorboard --logdir ${join(dir, 'tensorboard')}$`));

    assert.deepEqual(await readdir(local), [0, 1, 2].map(eventFileName));
    const curves = await readCurves(local);
    assert.deepEqual(curves['reward/code'], [[0, 0.25], [1, 0.5], [2, 0.75]]);
    assert.deepEqual(curves['mistake_book/tests'], [[0, 0], [1, 3], [2, 6]]);

    // Again, after a retried iteration 1: the same points, one per iteration.
    await record(iterationInput(storageUri, runId, 1, 0.9));
    assert.equal((await codeA1(['tensorboard', runId, '--storage', storageUri])).code, 0);
    assert.deepEqual(await readCurves(local), curves);
  });

  it('copies the curves of a run in S3, where the worker stored them', async () => {
    const connection = testS3Connection();
    const storageUri = `s3://${testBucket}/${uniqueRunId('tb')}`;
    const runId = uniqueRunId('s3');
    const { record } = curveRecorder({ openStore: (uri) => openStore(uri, connection) });
    await record(iterationInput(storageUri, runId, 0, 0.125));
    await record(iterationInput(storageUri, runId, 1, 0.375));
    const logdir = join(dir, 'from-s3');
    const env = { CODE_A1_S3_ENDPOINT: connection.endpoint, AWS_ACCESS_KEY_ID: connection.accessKeyId, AWS_SECRET_ACCESS_KEY: connection.secretAccessKey };
    const { code, stdout, stderr } = await codeA1(['tensorboard', runId, '--storage', storageUri, '--logdir', logdir], env);
    assert.equal(code, 0, stderr);
    assert.match(stdout, new RegExp(`2 event files from ${storageUri}/runs/${runId}/tensorboard/`));
    const curves = await readCurves(join(logdir, runId));
    assert.deepEqual(curves['reward/code'], [[0, 0.125], [1, 0.375]]);
    assert.deepEqual(curves['time/generateCode_s'], [[0, 1.5], [1, 1.5]]);
  });

  it('exits 2 naming the place it looked when the run has no records and no curves', async () => {
    const { code, stderr } = await codeA1(['tensorboard', 'no-such-run', '--storage', `file://${join(dir, 'store')}`]);
    assert.equal(code, 2);
    assert.match(stderr, /code-a1 tensorboard: run no-such-run has no iteration records under file:\/\/.*\/runs\/no-such-run\/iterations\//);
  });
});
