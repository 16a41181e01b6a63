import type { IterationSamples, RolloutSample, TestSample } from './samples.js';
import { clip, escapeHtml, formatValue } from './text.js';

/**
 * Caps on model output and problem text, in characters, and on tests per sample: enough to see
 * what the models write, small enough that a few iterations of samples stay a readable page
 * (the paper's 4,096-token responses are about 16,000 characters).
 */
const caps = { description: 1_200, code: 4_000, test: 300, tests: 24, reason: 400 };

/**
 * Sample rollouts of the last iterations, the latest open. Everything shown comes from model
 * output or storage: it is clipped, then escaped, and sits in text nodes only.
 */
export function samplesSection(samples: readonly IterationSamples[], totalIterations: number): string {
  const sorted = [...samples].sort((a, b) => b.iteration - a.iteration);
  const note =
    sorted.length < totalIterations
      ? `<p class="note">The last ${sorted.length} of ${totalIterations} iterations; the others' rollouts are in storage under <code>runs/&lt;runId&gt;/iter-&lt;n&gt;/</code>.</p>`
      : '';
  const iterations = sorted.map((it, i) => {
    const body =
      'unavailable' in it
        ? `<p class="unavailable">Samples not available: ${escapeHtml(clip(it.unavailable, caps.reason))}</p>`
        : it.samples.length === 0
          ? '<p class="unavailable">No problems in this iteration.</p>'
          : it.samples.map(sample).join('');
    // Said in the summary line too, so that a closed iteration tells whether it is worth opening.
    const missing = 'unavailable' in it ? ' · not available' : '';
    return `<details class="iteration" data-iteration="${it.iteration}"${i === 0 ? ' open' : ''}><summary>Iteration ${it.iteration}${missing}</summary>${body}</details>`;
  });
  return `<section id="samples"><h2>Sample rollouts</h2>${note}${iterations.join('')}</section>`;
}

function sample(s: RolloutSample): string {
  const facts = [
    `candidate ${s.candidateIndex + 1} of ${s.candidates}`,
    s.validCode ? 'valid code' : '<span class="bad">invalid code</span>',
    `code reward ${formatValue(s.reward ?? undefined)}`,
  ];
  const code = s.code === null ? '<p class="unavailable">The response held no code block.</p>' : `<pre class="code">${escapeHtml(clip(s.code, caps.code))}</pre>`;
  return [
    '<article class="sample">',
    `<h3><code>${escapeHtml(clip(s.questionId, caps.test))}</code> · ${facts.join(' · ')}</h3>`,
    `<pre class="description">${escapeHtml(clip(s.description, caps.description))}</pre>`,
    code,
    tests(s),
    '</article>',
  ].join('');
}

/** A row per generated test, grouped by the response that wrote it, at most `caps.tests` rows. */
function tests(s: RolloutSample): string {
  if (s.responses.length === 0) return '<p class="unavailable">No tests were generated against this candidate.</p>';
  const rows: string[] = [];
  let [shown, total] = [0, 0];
  for (const [r, response] of s.responses.entries()) {
    total += response.tests.length;
    if (rows.length >= caps.tests) continue;
    const who = `response ${r + 1} · test reward ${formatValue(response.reward ?? undefined)}`;
    if (response.tests.length === 0) rows.push(`<tr><td>${who}</td><td colspan="3" class="muted">no asserts</td></tr>`);
    for (const [i, t] of response.tests.slice(0, caps.tests - rows.length).entries()) {
      rows.push(`<tr><td>${i === 0 ? who : ''}</td><td><code>${escapeHtml(clip(t.test, caps.test))}</code></td>${verdicts(t)}</tr>`);
      shown++;
    }
  }
  const more = total > shown ? `<p class="note">${total - shown} more generated tests not shown.</p>` : '';
  return [
    '<table class="tests"><thead><tr><th scope="col">response</th><th scope="col">generated test</th><th scope="col">on the reference</th><th scope="col">on the candidate</th></tr></thead>',
    `<tbody>${rows.join('')}</tbody></table>${more}`,
  ].join('');
}

/**
 * The oracle's verdict, then the candidate's outcome. The execution record keeps only whether a
 * test passed, so a timeout or an error on the candidate shows as failed.
 */
function verdicts(t: TestSample): string {
  const reference = t.valid ? '<td class="ok">valid</td>' : '<td class="bad">invalid</td>';
  const candidate = t.passed === null ? '<td class="muted">not run</td>' : t.passed ? '<td class="ok">passed</td>' : '<td class="bad">failed</td>';
  return reference + candidate;
}
