import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { curveKeys, eventFileName } from '../../../activities/curves/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { getJson, openStore } from '../../../activities/storage/index.js';
import { keys } from '../../../workflows/contract.js';
import { tempDir, uniqueRunId } from '../../support/config.js';
import { curveRecorder as recorder, iterationInput, readCurves } from '../../support/tensorboard.js';

const dir = await tempDir('code-a1-curves-');
const storageUri = `file://${join(dir, 'store')}`;
after(() => rm(dir, { recursive: true, force: true }));

const input = (runId: string, iteration: number, codeReward: number) => iterationInput(storageUri, runId, iteration, codeReward);
const storedCurves = (runId: string) => readCurves(join(dir, 'store', curveKeys.dir(runId)));

describe('recordIteration writes training curves', () => {
  it('stores an event file per iteration that TensorBoard reads at step = iteration, and copies it to the local log dir', async () => {
    const runId = uniqueRunId('curves');
    const localDir = join(dir, 'local');
    const { record, logs } = recorder({ curves: { localDir } });
    for (const [i, reward] of [0.25, 0.5].entries()) await record(input(runId, i, reward));

    const expected = {
      'reward/code': [[0, 0.25], [1, 0.5]],
      'tests/valid_ratio': [[0, 0.5], [1, 0.5]],
      'tests/attack_rate': [[0, 0.25], [1, 0.25]],
      'mistake_book/tests': [[0, 0], [1, 3]],
      'train/code/loss': [[0, -0.5], [1, -0.5]],
      'train/code/grad_norm': [[0, 2], [1, 2]],
      'train/test/loss': [[0, 0.25], [1, 0.25]],
      'train/test/clip_fraction': [[0, 0.125], [1, 0.125]],
      'time/generateCode_s': [[0, 1.5], [1, 1.5]],
    };
    const curves = await storedCurves(runId);
    for (const [tag, points] of Object.entries(expected)) assert.deepEqual(curves[tag], points, tag);
    // KL is 1e-3 in the record and a 32-bit float in the event file.
    assert.ok(Math.abs(curves['train/code/kl']![1]![1] - 0.001) < 1e-9);
    assert.deepEqual(await readCurves(join(localDir, runId)), curves, 'the local copy holds the same curves');
    assert.deepEqual(await readdir(join(localDir, runId)), [eventFileName(0), eventFileName(1)]);
    assert.deepEqual(logs, []);
  });

  it('adds no second point when an iteration is recorded again (a retried activity)', async () => {
    const runId = uniqueRunId('retry');
    const { record } = recorder();
    await record(input(runId, 0, 0.25));
    await record(input(runId, 1, 0.5));
    // The retry recomputed a different reward; the committed record, and so its curve, wins.
    const again = await record(input(runId, 1, 0.75));
    assert.equal(again.metrics['score.codeRewardMean'], 0.5);
    const store = join(dir, 'store', curveKeys.dir(runId));
    assert.deepEqual(await readdir(store), [eventFileName(0), eventFileName(1)]);
    assert.deepEqual((await storedCurves(runId))['reward/code'], [[0, 0.25], [1, 0.5]]);
  });

  it('retries an upload that fails for an infrastructure reason, then writes the curves', async () => {
    const runId = uniqueRunId('flaky');
    let failures = 1;
    const flaky = (uri: string): ObjectStore => {
      const store = openStore(uri);
      return Object.assign(Object.create(store) as ObjectStore, {
        putFile: async (key: string, path: string) => {
          if (failures-- > 0) throw new Error('connect ECONNREFUSED 127.0.0.1:9100');
          return store.putFile(key, path);
        },
      });
    };
    const { record, logs } = recorder({ openStore: flaky });
    await record(input(runId, 0, 0.25));
    assert.deepEqual((await storedCurves(runId))['reward/code'], [[0, 0.25]]);
    assert.deepEqual(logs.map((l) => [l.level, l.message, l.meta?.attempt]), [['WARN', 'training curves not written, retrying', 1]]);
    assert.equal(await getJson(openStore(storageUri), curveKeys.failure(runId, 0)), undefined);
  });

  it('records the iteration even when the curve writer keeps failing, noting why after its tries', async () => {
    const runId = uniqueRunId('broken');
    const failing = join(dir, 'failing-python');
    await writeFile(failing, '#!/bin/sh\necho "MemoryError" >&2\nexit 1\n');
    await chmod(failing, 0o755);
    const { record, logs } = recorder({ curves: { python: failing, attempts: 3 } });
    const committed = await record(input(runId, 0, 0.25));

    assert.deepEqual(await getJson(openStore(storageUri), keys.iterationRecord(runId, 0)), committed);
    const note = await getJson<{ attempts: number; error: string }>(openStore(storageUri), curveKeys.failure(runId, 0));
    assert.equal(note?.attempts, 3);
    assert.match(note?.error ?? '', /exited with status 1: MemoryError/);
    assert.deepEqual(logs.map((l) => l.level), ['WARN', 'WARN', 'ERROR']);

    // Recorded again once the writer works: the curves appear and the note goes.
    await recorder().record(input(runId, 0, 0.25));
    assert.deepEqual((await storedCurves(runId))['reward/code'], [[0, 0.25]]);
    assert.equal(await getJson(openStore(storageUri), curveKeys.failure(runId, 0)), undefined);
  });

  it('does not retry what no retry can fix: an interpreter that is not there', async () => {
    const runId = uniqueRunId('no-python');
    const { record, logs } = recorder({ curves: { python: join(dir, 'no-such-python'), attempts: 3 } });
    await record(input(runId, 0, 0.25));
    const note = await getJson<{ attempts: number; error: string }>(openStore(storageUri), curveKeys.failure(runId, 0));
    assert.equal(note?.attempts, 1);
    assert.match(note?.error ?? '', /cannot run .*no-such-python/);
    assert.deepEqual(logs.map((l) => l.level), ['ERROR']);
  });
});
