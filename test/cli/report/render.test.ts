import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { groupMetrics, renderReport } from '../../../cli/report/index.js';
import { lineChart } from '../../../cli/report/line-chart.js';
import type { IterationSamples, RolloutSample } from '../../../cli/report/index.js';
import { clip, escapeHtml, formatValue } from '../../../cli/report/text.js';
import { hostileName, iterationRecord } from './fixtures.js';

const points = (svg: string) => [...svg.matchAll(/<circle class="point" data-iteration="(\d+)" data-value="([^"]*)" cx="([^"]+)" cy="([^"]+)"/g)];

describe('report metric groups', () => {
  it('puts each metric in the section of what it measures, most-read metrics first and stages in run order', () => {
    const metrics = Object.fromEntries(
      [
        'train.code.kl', 'train.code.grad_norm', 'train.code.loss', 'duration.updatePolicyMs', 'duration.sampleBatchMs',
        'score.testRewardMean', 'score.codeRewardMean', 'evaluate.humaneval.avgAtN', 'evaluate.humaneval.passAt1',
        'score.attackRate', 'score.validTestRatio', 'updateMistakeBook.bookTests', 'execute.testsPassed', 'score.invalidCodeRate',
        'generateCode.completionTokens', 'train.test.tokens_per_s', 'generateTests.truncated', 'generateCode.shards', 'sampleBatch.problems', hostileName,
      ].map((name) => [name, 1]),
    );
    assert.deepEqual(
      groupMetrics([iterationRecord('r', 0, metrics)]).map(({ id, metrics }) => [id, metrics]),
      [
        ['rewards', ['score.codeRewardMean', 'score.testRewardMean', 'evaluate.humaneval.passAt1', 'evaluate.humaneval.avgAtN']],
        ['tests', ['score.attackRate', 'score.validTestRatio', 'updateMistakeBook.bookTests']],
        ['code', ['score.invalidCodeRate', 'execute.testsPassed']],
        ['tokens', ['generateCode.completionTokens', 'train.test.tokens_per_s']],
        ['generation', ['generateTests.truncated', 'generateCode.shards']],
        ['durations', ['duration.sampleBatchMs', 'duration.updatePolicyMs']],
        ['trainer', ['train.code.kl', 'train.code.loss', 'train.code.grad_norm']],
        ['other', [hostileName, 'sampleBatch.problems']],
      ],
    );
  });

  it('lists a metric that only some iterations recorded, and no section without metrics', () => {
    const groups = groupMetrics([iterationRecord('r', 0, { 'score.codeRewardMean': 0 }), iterationRecord('r', 1, { 'train.code.loss': 1 })]);
    assert.deepEqual(groups.map((g) => g.id), ['rewards', 'trainer']);
  });
});

describe('report line chart', () => {
  it('draws one point per iteration, later iterations to the right and larger values higher', () => {
    const svg = lineChart({ metric: 'm', iterations: [0, 1, 2], values: [0.25, 0.5, 0.75] });
    const found = points(svg);
    assert.deepEqual(found.map((p) => [p[1], p[2]]), [['0', '0.25'], ['1', '0.5'], ['2', '0.75']]);
    const xs = found.map((p) => Number(p[3]));
    const ys = found.map((p) => Number(p[4]));
    assert.ok(xs[0]! < xs[1]! && xs[1]! < xs[2]!, `x grows with iteration: ${xs}`);
    assert.ok(ys[0]! > ys[1]! && ys[1]! > ys[2]!, `y shrinks (goes up) with value: ${ys}`);
    assert.match(svg, /<path class="line" d="M[\d.]+ [\d.]+L[\d.]+ [\d.]+L[\d.]+ [\d.]+"\/>/);
  });

  it('leaves out missing and NaN values and breaks the line there instead of bridging the gap', () => {
    const svg = lineChart({ metric: 'm', iterations: [0, 1, 2, 3, 4], values: [1, undefined, 2, Number.NaN, 3] });
    assert.deepEqual(points(svg).map((p) => p[1]), ['0', '2', '4']);
    const d = /<path class="line" d="([^"]*)"/.exec(svg)![1]!;
    assert.equal(d.match(/M/g)?.length, 3);
    assert.doesNotMatch(d, /L/);
    assert.doesNotMatch(svg, /NaN/);
  });

  it('centres the only point of a one-iteration run and gives a flat series a range', () => {
    const svg = lineChart({ metric: 'm', iterations: [7], values: [0] });
    const [point] = points(svg);
    assert.equal(points(svg).length, 1);
    assert.equal(Number(point![3]), (46 + 250) / 2);
    assert.match(svg, /<text class="tick"[^>]*>1<\/text>.*<text class="tick"[^>]*>-1<\/text>/);
    assert.doesNotMatch(svg, /NaN|Infinity/);
  });

  it('says "no values" for a metric no iteration recorded a number for', () => {
    const svg = lineChart({ metric: 'm', iterations: [0, 1], values: [undefined, undefined] });
    assert.equal(points(svg).length, 0);
    assert.match(svg, />no values</);
  });
});

describe('report page', () => {
  const records = [
    iterationRecord('demo', 1, { 'score.codeRewardMean': 0.5, 'train.code.loss': Number.NaN }),
    iterationRecord('demo', 0, { 'score.codeRewardMean': 0.25, 'train.code.loss': 0.0123456, [hostileName]: 3 }),
  ];

  it('summarises the last iteration and tabulates every metric by iteration, absent values as a dash', () => {
    const html = renderReport({ runId: 'demo', storageUri: 'file:///tmp/store', records });
    assert.match(html, /<dt>Completed iterations<\/dt><dd>2 \(iterations 0–1\)<\/dd>/);
    assert.match(html, /<dt>Mistake Book<\/dt><dd><code>runs\/demo\/mistake-book\/iter-1.json<\/code><\/dd>/);
    assert.match(html, /<dt>Code LLM checkpoint<\/dt><dd><code>runs\/demo\/checkpoints\/code\/iter-1<\/code><\/dd>/);
    assert.match(html, /<thead><tr><th scope="col">metric<\/th><th scope="col">0<\/th><th scope="col">1<\/th><\/tr><\/thead>/);
    assert.match(html, /<th scope="row">score.codeRewardMean<\/th><td>0.25<\/td><td>0.5<\/td><\/tr>/);
    assert.match(html, /<th scope="row">train.code.loss<\/th><td>0.01235<\/td><td>–<\/td><\/tr>/);
    assert.match(html, /<th scope="row">&lt;img src=x onerror=alert\(1\)&gt;<\/th><td>3<\/td><td>–<\/td><\/tr>/);
  });

  it('escapes run IDs, keys and metric names from storage and references nothing outside the file', () => {
    const hostile = '"><script>alert(2)</script>';
    const html = renderReport({
      runId: hostile,
      storageUri: hostile,
      records: [{ ...iterationRecord('x', 0, { [hostileName]: 1, [hostile]: 2 }), mistakeBookKey: hostile, checkpoints: { code: hostile, test: hostile } }],
    });
    assert.doesNotMatch(html, /<img|<script/i);
    assert.ok(!html.includes(hostile) && !html.includes(hostileName), 'no stored string appears unescaped');
    assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(html, /&quot;&gt;&lt;script&gt;alert\(2\)&lt;\/script&gt;/);
    assert.doesNotMatch(html, /\b(src|href)\s*=\s*"|url\(|@import|https?:\/\//);
  });
});

describe('report headline and samples', () => {
  const records = [0, 1, 2].map((i) => iterationRecord('demo', i, { 'score.codeRewardMean': i / 4, 'train.code.kl': 0.001 * i, 'score.validTestRatio': 0.5 }));
  const hostileCode = '</pre><script>alert(1)</script>';
  const sample: RolloutSample = {
    questionId: 'q<1>',
    description: 'Return <b>x</b>.',
    candidateIndex: 1,
    candidates: 8,
    validCode: true,
    code: hostileCode,
    reward: 0.375,
    responses: [
      {
        reward: 0.5,
        tests: [
          { test: 'assert f(1) == 1', valid: true, passed: true },
          { test: 'assert f("<img src=x onerror=alert(2)>") == 2', valid: true, passed: false },
          { test: 'assert f(3) == 4', valid: false, passed: null },
        ],
      },
    ],
  };
  const samples: IterationSamples[] = [
    { iteration: 1, unavailable: 'runs/demo/iter-1/scores.json is <missing>' },
    { iteration: 2, samples: [sample] },
  ];
  const html = renderReport({ runId: 'demo', records, samples });
  const sectionIds = [...html.matchAll(/<section[^>]* id="([^"]+)"/g)].map((m) => m[1]);

  it('opens with the headline charts, titled for a reader, before the run summary, the samples and the metric groups', () => {
    assert.deepEqual(sectionIds, ['headline', 'summary', 'samples', 'group-rewards', 'group-tests', 'group-trainer', 'all-metrics']);
    const headline = html.slice(html.indexOf('id="headline"'), html.indexOf('id="summary"'));
    const titles = [...headline.matchAll(/<span class="title">([^<]*)<\/span>/g)].map((m) => m[1]);
    assert.deepEqual(titles, ['Code reward (mean)', 'Valid generated tests', 'Attack rate', 'Mistake Book tests', 'Loss / KL (Code LLM)', 'Loss / KL (Test LLM)']);
    assert.match(headline, /<code>score.codeRewardMean<\/code> <span class="latest">0.5<\/span>/);
    assert.match(headline, /<code>score.validTestRatio<\/code> <span class="latest">50.0%<\/span>/);
    assert.match(headline, /<span class="label">KL<\/span> <code>train.code.kl<\/code> <span class="latest">0.002<\/span>/);
    assert.match(headline, /<svg class="chart" data-metric="score.attackRate"(?:(?!<\/svg>).)*>no values</, 'a headline metric no iteration recorded says so');
  });

  it('shows model output and problem text as escaped text, never as markup', () => {
    assert.doesNotMatch(html, /<script|<img|<b>/i);
    assert.ok(html.includes(`<pre class="code">${escapeHtml(hostileCode)}</pre>`));
    assert.match(html, /<pre class="description">Return &lt;b&gt;x&lt;\/b&gt;.<\/pre>/);
    assert.match(html, /<code>q&lt;1&gt;<\/code> · candidate 2 of 8 · valid code · code reward 0.375/);
    assert.match(html, /<td><code>assert f\(&quot;&lt;img src=x onerror=alert\(2\)&gt;&quot;\) == 2<\/code><\/td><td class="ok">valid<\/td><td class="bad">failed<\/td>/);
  });

  it('gives each test its verdict on the reference and on the candidate, under the response that wrote it', () => {
    const rows = [...html.matchAll(/<tr><td>([^<]*)<\/td><td><code>[^<]*<\/code><\/td><td class="\w+">(\w+)<\/td><td class="\w+">([\w ]+)<\/td><\/tr>/g)].map((m) => m.slice(1));
    assert.deepEqual(rows, [
      ['response 1 · test reward 0.5', 'valid', 'passed'],
      ['', 'valid', 'failed'],
      ['', 'invalid', 'not run'],
    ]);
  });

  it('says "not available" with the reason for an iteration whose artifacts could not be read, latest iteration first and open', () => {
    assert.match(html, /<details class="iteration" data-iteration="2" open><summary>Iteration 2<\/summary>.*<details class="iteration" data-iteration="1"><summary>Iteration 1 · not available<\/summary><p class="unavailable">Samples not available: runs\/demo\/iter-1\/scores.json is &lt;missing&gt;<\/p>/);
  });

  it('notes which iterations are sampled, and clips long code and long test lists', () => {
    const long: RolloutSample = { ...sample, code: 'x'.repeat(10_000), responses: [{ reward: 0, tests: Array.from({ length: 30 }, (_, i) => ({ test: `assert f(${i}) == ${i}`, valid: true, passed: true })) }] };
    const page = renderReport({ runId: 'demo', records: Array.from({ length: 12 }, (_, i) => iterationRecord('demo', i, {})), samples: [{ iteration: 11, samples: [long] }] });
    assert.match(page, /The last 1 of 12 iterations/);
    assert.match(page, /<pre class="code">x{4000}… \[6000 more characters\]<\/pre>/);
    assert.equal([...page.matchAll(/<td class="ok">passed<\/td>/g)].length, 24);
    assert.match(page, /6 more generated tests not shown/);
  });

  it('has no samples section when no samples were read', () => {
    assert.doesNotMatch(renderReport({ runId: 'demo', records }), /id="samples"/);
  });
});

describe('report text', () => {
  it('escapes every character that could end a text node or an attribute, and nothing is lost', () => {
    const unescape = (s: string) => s.replace(/&(lt|gt|quot|#39|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', '#39': "'", amp: '&' })[e]!);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme-ascii' }), (s) => {
        const escaped = escapeHtml(s);
        assert.doesNotMatch(escaped, /[<>"']/);
        assert.equal(unescape(escaped), s);
      }),
    );
  });

  it('clips long text without splitting a character and shows control characters as a replacement', () => {
    assert.equal(clip('abc', 3), 'abc');
    assert.equal(clip('abcdef', 3), 'abc… [3 more characters]');
    assert.equal(clip('ab😀cd', 3), 'ab… [4 more characters]');
    assert.equal(clip('a\u0000b\u001bc\n\td', 10), 'a\uFFFDb\uFFFDc\n\td');
  });

  it('formats integers as they are and other numbers to four significant digits', () => {
    assert.deepEqual(
      [12, 0.5, 0.0123456, 1234.56, -0.333333, 1e-7, undefined, Number.NaN, Infinity].map(formatValue),
      ['12', '0.5', '0.01235', '1235', '-0.3333', '1e-7', '–', '–', '–'],
    );
  });
});
