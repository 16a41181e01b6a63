import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { workflowBundle } from '../support/temporal.js';

const dir = new URL('../histories/', import.meta.url);

describe('recorded workflow histories', () => {
  it('replay without nondeterminism on the current workflow code', async () => {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    assert.ok(files.some((f) => f.startsWith('iteration-')), 'a recorded codeA1Iteration history is kept in test/histories');
    assert.ok(files.some((f) => f.startsWith('training-')), 'a recorded codeA1Training history is kept in test/histories');
    const histories = files.map(async (file) => ({
      workflowId: file,
      history: historyFromJSON(JSON.parse(await readFile(new URL(file, dir), 'utf8'))),
    }));
    const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, (async function* () {
      for (const h of histories) yield await h;
    })());
    let replayed = 0;
    for await (const result of results) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${result.error?.message}`);
      replayed++;
    }
    assert.equal(replayed, files.length);
  });
});
