import type { IterationRecord } from '../../workflows/contract.js';
import { stages } from '../../workflows/contract.js';

/**
 * The report's sections. Metric names are `<stage>.<summary field>`, `train.<role>.<trainer
 * metric>` and `duration.<stage>Ms` (activities/run-state.ts recordIteration), the same names the
 * end-of-run table reads (cli/progress.ts). A metric goes to the first group with a matching
 * pattern and sorts by that pattern's position, then by name; whatever no group claims lands in
 * the last one, so every stored metric gets a chart.
 */
const groups: ReadonlyArray<{ id: string; title: string; patterns: RegExp[] }> = [
  {
    id: 'rewards',
    title: 'Rewards and pass rates',
    patterns: [/^score\.(codeRewardMean|testRewardMean|validScoreMean)$/, /^evaluate\..*\.passAt\d+$/, /^evaluate\./],
  },
  {
    id: 'tests',
    title: 'Tests: valid ratio, attack rate, Mistake Book',
    patterns: [
      /^score\.(validTestRatio|attackRate|bookAttackRate)$/,
      /^execute\.validAssertRatio$/,
      /^updateMistakeBook\./,
      /^score\.(bookTests|retiredProblems)$/,
      /^generateTests\.(asserts|noAsserts)$/,
    ],
  },
  {
    id: 'code',
    title: 'Invalid code and sandbox outcomes',
    patterns: [/^score\.invalidCodeRate$/, /^execute\.invalidCodeRate$/, /^execute\./, /^generateCode\.noCode$/],
  },
  { id: 'tokens', title: 'Tokens', patterns: [/^generate(Code|Tests)\..*Tokens$/, /tokens/i] },
  {
    id: 'generation',
    title: 'Generation: samples, errors, truncation',
    patterns: [/^generate(Code|Tests)\.(samples|errors|truncated|emptyResponses)$/, /^generate(Code|Tests)\./],
  },
  {
    id: 'durations',
    title: 'Stage durations (ms)',
    // In the order an iteration runs its stages.
    patterns: [...stages.map((s) => new RegExp(`^duration\\.${s}Ms$`)), /^duration\./],
  },
  { id: 'trainer', title: 'Trainer: loss and KL', patterns: [/^train\.[^.]+\.(loss|kl)$/, /^train\./] },
  // Claims what no group above does (matched by the fallback in groupMetrics).
  { id: 'other', title: 'Other metrics', patterns: [] },
];

export interface MetricGroup {
  /** A fixed identifier for the section's HTML id; never derived from stored names. */
  id: string;
  title: string;
  metrics: string[];
}

/** The groups that have metrics in any of the records, each with its metrics in display order. */
export function groupMetrics(records: readonly IterationRecord[]): MetricGroup[] {
  const names = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))];
  const placed = names.map((name) => {
    for (const [g, group] of groups.entries()) {
      const p = group.patterns.findIndex((pattern) => pattern.test(name));
      if (p >= 0) return { name, g, p };
    }
    return { name, g: groups.length - 1, p: 0 };
  });
  placed.sort((a, b) => a.g - b.g || a.p - b.p || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return groups
    .map(({ id, title }, g) => ({ id, title, metrics: placed.filter((m) => m.g === g).map((m) => m.name) }))
    .filter((group) => group.metrics.length > 0);
}
