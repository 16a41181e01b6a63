import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { openStore, putJson } from '../../../activities/storage/index.js';
import { keys } from '../../../workflows/contract.js';
import { rawConfig, tempDir, uniqueRunId } from '../../support/config.js';
import type { ScoresRecord } from '../../../activities/scoring/index.js';
import { headline } from '../../../cli/report/index.js';
import { formatValue } from '../../../cli/report/text.js';
import { hostileName, iterationRecord, writeIterationArtifacts } from './fixtures.js';

/** Debian's chromium package, installed by infra/install-browser.sh (called from infra/test.sh). */
const chromiumPath = '/usr/bin/chromium';
const bin = fileURLToPath(new URL('../../../bin/code-a1.js', import.meta.url));
const dir = await tempDir('code-a1-report-');
const storageUri = `file://${join(dir, 'store')}`;
const runId = uniqueRunId('report');
const hostileCheckpoint = '"><script>alert(2)</script>';
// Model output that would end the <pre> and run script, or load an image, if it were not escaped.
const hostileCode = 'def f(x):\n    return x  # </pre><script>alert(3)</script>';
const hostileTest = 'assert f("<img src=x onerror=alert(4)>") == 1';
let scores: ScoresRecord;

// Three iterations as recordIteration writes them, with what real runs have: a metric only some
// iterations record (evaluation every K), a NaN (stored as null), a name no group knows.
const metrics: Array<Record<string, number>> = [0, 1, 2].map((i) => ({
  'score.codeRewardMean': [0.25, 0.5, 0.75][i]!,
  'score.testRewardMean': [0.1, 0.2, 0.3][i]!,
  'score.validTestRatio': [0.4, 0.45, 0.6][i]!,
  'score.attackRate': [0.05, 0.1, 0.2][i]!,
  'updateMistakeBook.bookTests': [0, 4, 9][i]!,
  'score.invalidCodeRate': [0.625, 0.1875, 0.125][i]!,
  'execute.testsPassed': [3, 7, 12][i]!,
  'generateCode.completionTokens': [4162, 2044, 3001][i]!,
  'duration.generateCodeMs': [120500, 90250, 80125][i]!,
  'train.code.loss': [0.0123456, -0.5, 0.25][i]!,
  'train.code.kl': [0, 0.001, 0.002][i]!,
  'train.test.loss': [0.5, Number.NaN, 0.25][i]!,
  [hostileName]: i + 1,
  ...(i === 1 ? { 'evaluate.humaneval.passAt1': 0.375 } : {}),
}));

/** Chart section, points and table row expected for each metric. */
const expected: Array<{ metric: string; group: string; iterations: number[]; row: string[] }> = [
  { metric: 'score.codeRewardMean', group: 'rewards', iterations: [0, 1, 2], row: ['0.25', '0.5', '0.75'] },
  { metric: 'score.testRewardMean', group: 'rewards', iterations: [0, 1, 2], row: ['0.1', '0.2', '0.3'] },
  { metric: 'evaluate.humaneval.passAt1', group: 'rewards', iterations: [1], row: ['–', '0.375', '–'] },
  { metric: 'score.attackRate', group: 'tests', iterations: [0, 1, 2], row: ['0.05', '0.1', '0.2'] },
  { metric: 'score.validTestRatio', group: 'tests', iterations: [0, 1, 2], row: ['0.4', '0.45', '0.6'] },
  { metric: 'updateMistakeBook.bookTests', group: 'tests', iterations: [0, 1, 2], row: ['0', '4', '9'] },
  { metric: 'score.invalidCodeRate', group: 'code', iterations: [0, 1, 2], row: ['0.625', '0.1875', '0.125'] },
  { metric: 'execute.testsPassed', group: 'code', iterations: [0, 1, 2], row: ['3', '7', '12'] },
  { metric: 'generateCode.completionTokens', group: 'tokens', iterations: [0, 1, 2], row: ['4162', '2044', '3001'] },
  { metric: 'duration.generateCodeMs', group: 'durations', iterations: [0, 1, 2], row: ['120500', '90250', '80125'] },
  { metric: 'train.code.kl', group: 'trainer', iterations: [0, 1, 2], row: ['0', '0.001', '0.002'] },
  { metric: 'train.code.loss', group: 'trainer', iterations: [0, 1, 2], row: ['0.01235', '-0.5', '0.25'] },
  { metric: 'train.test.loss', group: 'trainer', iterations: [0, 2], row: ['0.5', '–', '0.25'] },
  { metric: hostileName, group: 'other', iterations: [0, 1, 2], row: ['1', '2', '3'] },
];

/** What the test reads off the rendered page. */
interface PageContents {
  sections: string[];
  headlineTitles: string[];
  samples: Array<{ iteration: string; open: boolean; code: Array<{ text: string; visible: boolean }>; tests: string[][]; unavailable: string | null }>;
  charts: Array<{ metric: string; group: string; rendered: boolean; lineLength: number; points: Array<{ iteration: number; x: number; y: number; visible: boolean }> }>;
  header: string[];
  rows: string[][];
  summary: Record<string, string>;
  title: string;
  status: { state: string | null; text: string | null } | null;
  elements: number;
  captions: string[];
}

// Evaluated in the page as source text: the project type-checks without DOM types, and tsx would
// wrap named functions in a helper the page does not have.
const inspectPage = `(() => ({
  sections: [...document.querySelectorAll('body > section')].map((s) => s.id),
  headlineTitles: [...document.querySelectorAll('figure.headline .title')].map((t) => t.textContent),
  samples: [...document.querySelectorAll('details.iteration')].map((d) => ({
    iteration: d.getAttribute('data-iteration'),
    open: d.open,
    code: [...d.querySelectorAll('pre.code')].map((p) => ({ text: p.textContent, visible: p.getBoundingClientRect().height > 0 })),
    tests: [...d.querySelectorAll('table.tests tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
    unavailable: d.querySelector('.unavailable') ? d.querySelector('.unavailable').textContent : null,
  })),
  charts: [...document.querySelectorAll('svg.chart')].map((svg) => {
    const box = svg.getBoundingClientRect();
    const line = svg.querySelector('path.line');
    return {
      metric: svg.getAttribute('data-metric'),
      group: svg.closest('section').id,
      rendered: box.width > 0 && box.height > 0,
      lineLength: line ? line.getTotalLength() : 0,
      points: [...svg.querySelectorAll('circle.point')].map((c) => {
        const r = c.getBoundingClientRect();
        const visible = r.width > 0 && r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom;
        return { iteration: Number(c.getAttribute('data-iteration')), x: r.left, y: r.top, visible };
      }),
    };
  }),
  header: [...document.querySelectorAll('#metrics thead th')].map((th) => th.textContent),
  rows: [...document.querySelectorAll('#metrics tbody tr')].map((tr) => [...tr.children].map((cell) => cell.textContent)),
  summary: Object.fromEntries([...document.querySelectorAll('#summary dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])),
  title: document.title,
  status: document.querySelector('#status') && { state: document.querySelector('#status').getAttribute('data-state'), text: document.querySelector('#status').textContent },
  elements: document.querySelectorAll('img, script, iframe, object, embed').length,
  captions: [...document.querySelectorAll('figcaption .name')].map((n) => n.textContent),
}))()`;

/** Runs the CLI; never throws, returns exit code and output. */
async function codeA1(args: string[], cwd = dir): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Debian's Chromium, headless. A missing browser is a broken test set-up: the test fails, never skips. */
async function launchChromium(): Promise<Browser> {
  assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: install it with infra/install-browser.sh (as root)`);
  // --no-sandbox: tests run as root in CI containers, where Chromium's own sandbox cannot start.
  return chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** Opens a written report in headless Chromium and reads it; fails on any console error or request. */
async function inspect(out: string): Promise<PageContents> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => ['error', 'warning'].includes(m.type()) && problems.push(`console ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('dialog', (d) => (problems.push(`dialog: ${d.message()}`), void d.dismiss()));
    page.on('request', (r) => requests.push(r.url()));
    const url = pathToFileURL(out).href;
    await page.goto(url, { waitUntil: 'load' });
    const seen = (await page.evaluate(inspectPage)) as PageContents;
    assert.deepEqual(problems, []);
    assert.deepEqual(requests, [url], 'the page loads nothing but itself');
    return seen;
  } finally {
    await browser.close();
  }
}

/** A run config file for `id` in the test's store, planning `iterations`. */
async function configFile(id: string, iterations: number): Promise<string> {
  const path = join(dir, `${id}.json`);
  await writeFile(path, JSON.stringify({ ...rawConfig(join(dir, 'store')), runId: id, iterations }));
  return path;
}

before(async () => {
  const store = openStore(storageUri);
  for (const [i, m] of metrics.entries()) {
    const record = iterationRecord(runId, i, m);
    await putJson(store, keys.iterationRecord(runId, i), i === 2 ? { ...record, checkpoints: { ...record.checkpoints, code: hostileCheckpoint } } : record);
  }
  // Rollouts for the last iteration only: the others' samples are not available.
  scores = await writeIterationArtifacts(store, runId, 2, [
    {
      questionId: 'q0',
      description: 'Return x <unchanged>.',
      candidates: [{ code: hostileCode, valid: true, responses: [[{ test: hostileTest, valid: true, passed: true }, { test: 'assert f(', valid: false }]] }],
    },
  ]);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('code-a1 report', () => {
  it('writes reports/<runId>.html under the current directory by default and prints its absolute path', async () => {
    const { code, stdout } = await codeA1(['report', runId, '--storage', storageUri]);
    assert.equal(code, 0);
    assert.equal(stdout.trim(), join(dir, 'reports', `${runId}.html`));
    assert.match(await readFile(stdout.trim(), 'utf8'), /^<!doctype html>/);
  });

  it('renders in a headless browser: headline first, a chart point per recorded value, samples and stored strings as text, the full table, no requests', async () => {
    const out = join(dir, 'out', 'report.html');
    const { code, stdout } = await codeA1(['report', runId, '--storage', storageUri, '--out', out]);
    assert.equal(code, 0);
    assert.equal(stdout.trim(), out);

    const seen = await inspect(out);
    assert.equal(seen.elements, 0, 'no stored string became an element');
    assert.deepEqual(seen.status, {
      state: 'unknown',
      text: "3 iterations complete; no later iteration has started. Give the run's config (--config) to compare with the planned count.",
    });
    assert.equal(seen.title, `Code-A1 run ${runId}`);

    assert.deepEqual(seen.summary, {
      'Completed iterations': '3 (iterations 0–2)',
      Storage: storageUri,
      'Code LLM checkpoint': hostileCheckpoint,
      'Test LLM checkpoint': `runs/${runId}/checkpoints/test/iter-2`,
      'Mistake Book': `runs/${runId}/mistake-book/iter-2.json`,
      Metrics: String(expected.length),
    });

    assert.equal(seen.sections[0], 'headline', 'the headline comes first');
    assert.deepEqual(seen.headlineTitles, headline.map((h) => h.title));
    const headlineMetrics = headline.flatMap((h) => h.metrics.map((m) => m.metric));
    assert.deepEqual(
      seen.charts.map((c) => [c.metric, c.group]).sort(),
      [...headlineMetrics.map((m) => [m, 'headline']), ...expected.map((e) => [e.metric, `group-${e.group}`])].sort(),
    );
    for (const metric of headlineMetrics) {
      const chart = seen.charts.find((c) => c.metric === metric && c.group === 'headline')!;
      const points = chart.points.map((p) => p.iteration);
      assert.deepEqual(points, expected.find((e) => e.metric === metric)?.iterations ?? [], `${metric}: headline chart points`);
      assert.ok(chart.rendered && chart.points.every((p) => p.visible), `${metric}: headline chart drawn, points inside`);
    }

    assert.deepEqual(
      seen.samples.map(({ iteration, open, unavailable }) => [iteration, open, unavailable]),
      [
        ['2', true, null],
        ['1', false, `Samples not available: runs/${runId}/iter-1/execution/manifest.json is missing`],
        ['0', false, `Samples not available: runs/${runId}/iter-0/execution/manifest.json is missing`],
      ],
    );
    assert.deepEqual(seen.samples[0]!.code, [{ text: hostileCode, visible: true }], 'model code shows as text');
    assert.deepEqual(seen.samples[0]!.tests, [
      [`response 1 · test reward ${formatValue(scores.problems[0]!.candidates[0]!.responses[0]!.rewardB)}`, hostileTest, 'valid', 'passed'],
      ['', 'assert f(', 'invalid', 'not run'],
    ]);

    assert.ok(seen.captions.includes(hostileName));
    for (const e of expected) {
      const chart = seen.charts.find((c) => c.metric === e.metric && c.group === `group-${e.group}`)!;
      assert.ok(chart.rendered, `${e.metric}: chart has a size`);
      assert.deepEqual(chart.points.map((p) => p.iteration), e.iterations, `${e.metric}: one point per recorded iteration`);
      assert.ok(chart.points.every((p) => p.visible), `${e.metric}: every point lies inside its chart`);
      const xs = chart.points.map((p) => p.x);
      assert.deepEqual([...xs].sort((a, b) => a - b), xs, `${e.metric}: later iterations to the right`);
      assert.equal(chart.lineLength > 0, e.iterations.length === 3, `${e.metric}: a line joins consecutive values only`);
    }
    const reward = seen.charts.find((c) => c.metric === 'score.codeRewardMean')!.points.map((p) => p.y);
    assert.ok(reward[0]! > reward[1]! && reward[1]! > reward[2]!, `a rising reward is drawn rising: ${reward}`);

    assert.deepEqual(seen.header, ['metric', '0', '1', '2']);
    assert.deepEqual(
      seen.rows.sort(),
      expected.map((e) => [e.metric, ...e.row]).sort(),
    );
  });

  it('reads the storage URI from a run config file, and says the run is complete when it has all planned iterations', async () => {
    const out = join(dir, 'from-config.html');
    const { code, stdout } = await codeA1(['report', runId, '--config', await configFile(runId, 3), '--out', out]);
    assert.equal(code, 0);
    assert.equal(stdout.trim(), out);
    assert.match(await readFile(out, 'utf8'), /<p id="status" class="status" data-state="complete">Complete: 3 of 3 planned iterations\.<\/p>/);
  });

  it('renders a run during its training: the completed iterations, marked in progress with the one under way', async () => {
    const live = uniqueRunId('live');
    const store = openStore(storageUri);
    for (const i of [0, 1]) await putJson(store, keys.iterationRecord(live, i), iterationRecord(live, i, metrics[i]!));
    // Iteration 2 has sampled its batch and has no record yet.
    await writeIterationArtifacts(store, live, 2, [{ questionId: 'q0', description: 'd', candidates: [{ code: 'x = 1', valid: true, responses: [] }] }]);
    const out = join(dir, 'live.html');
    const { code } = await codeA1(['report', live, '--config', await configFile(live, 5), '--out', out]);
    assert.equal(code, 0);

    const seen = await inspect(out);
    assert.deepEqual(seen.status, {
      state: 'running',
      text: 'In progress: 2 of 5 planned iterations complete; iteration 2 has started (or was cut short). This report shows the completed iterations; run it again for newer ones.',
    });
    assert.equal(seen.title, `Code-A1 run ${live} (in progress)`);
    assert.deepEqual(seen.headlineTitles, headline.map((h) => h.title), 'the headline comes first, as for a finished run');
    assert.equal(seen.sections[0], 'headline');
    const reward = seen.charts.find((c) => c.metric === 'score.codeRewardMean' && c.group === 'headline')!;
    assert.deepEqual(reward.points.map((p) => p.iteration), [0, 1]);
    assert.equal(seen.summary['Completed iterations'], '2 (iterations 0–1)');
    assert.deepEqual(seen.header, ['metric', '0', '1']);
    assert.deepEqual(seen.samples.map((s) => s.iteration), ['1', '0'], 'samples of completed iterations only');
  });

  it('says a run with fewer iterations than planned and none under way is not finished', async () => {
    const paused = uniqueRunId('paused');
    await putJson(openStore(storageUri), keys.iterationRecord(paused, 0), iterationRecord(paused, 0, metrics[0]!));
    const out = join(dir, 'paused.html');
    assert.equal((await codeA1(['report', paused, '--config', await configFile(paused, 4), '--out', out])).code, 0);
    assert.match(
      await readFile(out, 'utf8'),
      /data-state="waiting">Not finished: 1 of 4 planned iterations complete; iteration 1 has not started \(paused, stopped, or about to start\)\.</,
    );
  });

  it('exits 2 saying the first iteration has started when a run has no record yet', async () => {
    const fresh = uniqueRunId('fresh');
    await writeIterationArtifacts(openStore(storageUri), fresh, 0, []);
    const { code, stderr } = await codeA1(['report', fresh, '--storage', storageUri]);
    assert.equal(code, 2);
    assert.match(stderr, new RegExp(`run ${fresh} has no iteration records yet \\(iteration 0 has started\\) under `));
  });

  it('exits 2 for a config of another run, whose planned iterations would mislead', async () => {
    const { code, stderr } = await codeA1(['report', runId, '--config', await configFile('other-run', 3)]);
    assert.equal(code, 2);
    assert.match(stderr, new RegExp(`configures run 'other-run', not '${runId}'`));
  });

  it('exits 2 naming the place it looked when the run has no iteration records', async () => {
    const { code, stdout, stderr } = await codeA1(['report', 'no-such-run', '--storage', storageUri]);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /code-a1 report: run no-such-run has no iteration records under file:\/\/.*\/runs\/no-such-run\/iterations\//);
  });

  it('exits 2 for a run ID that could name a path outside reports/', async () => {
    const { code, stderr } = await codeA1(['report', '../escape', '--storage', storageUri]);
    assert.equal(code, 2);
    assert.match(stderr, /run ID '\.\.\/escape'/);
  });

  it('exits 1 naming the key of a stored record that is not an iteration record', async () => {
    const broken = uniqueRunId('broken');
    await putJson(openStore(storageUri), keys.iterationRecord(broken, 0), { runId: broken, iteration: 0, metrics: { loss: 'high' } });
    const { code, stderr } = await codeA1(['report', broken, '--storage', storageUri]);
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`runs/${broken}/iterations/00000000.json is not an iteration record: .*metrics`));
  });
});
