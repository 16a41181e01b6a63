import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes of the project's workflows. Registered on the dev server by
 * infra/temporal-server.ts; other clusters need them created once (README, "Temporal cluster").
 * `temporal workflow list --query 'CodeA1Blocked = true'` lists every run waiting for a retry.
 */
export const runIdAttribute = defineSearchAttributeKey('CodeA1RunId', 'KEYWORD');
export const iterationAttribute = defineSearchAttributeKey('CodeA1Iteration', 'INT');
/** The stage the run's current iteration is in, upserted at every stage change. */
export const stageAttribute = defineSearchAttributeKey('CodeA1Stage', 'KEYWORD');
/** True while a stage waits for `code-a1 retry`. */
export const blockedAttribute = defineSearchAttributeKey('CodeA1Blocked', 'BOOL');
