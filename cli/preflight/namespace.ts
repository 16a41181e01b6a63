import type { Client } from '@temporalio/client';
import type { WorkerEnv } from '../../config/worker-env.js';
import { blockedAttribute, iterationAttribute, runIdAttribute, stageAttribute } from '../../workflows/search-attributes.js';
import type { Finding } from './finding.js';
import { describe, fail, pass } from './finding.js';

const attributes = [runIdAttribute, iterationAttribute, stageAttribute, blockedAttribute];
const typeNames = { KEYWORD: 'Keyword', INT: 'Int', BOOL: 'Bool' } as Record<string, string>;

/** The namespace exists and has the search attributes the workflows set (the dev server's are made by `stack up`). */
export async function checkNamespace(client: Client, env: WorkerEnv): Promise<Finding> {
  const subject = `Temporal namespace ${env.namespace} at ${env.temporalAddress}`;
  try {
    await client.workflowService.describeNamespace({ namespace: env.namespace });
  } catch (err) {
    const missing = (err as { code?: number }).code === 5;
    return missing
      ? fail(subject, 'does not exist', `temporal operator namespace create --namespace ${env.namespace}, or set TEMPORAL_NAMESPACE to an existing one`)
      : fail(subject, `cannot be described: ${describe(err)}`, 'start Temporal (local stack: npx code-a1 stack up) or correct TEMPORAL_ADDRESS and its TLS settings');
  }
  const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace: env.namespace });
  const absent = attributes.filter((a) => !customAttributes?.[a.name]);
  if (absent.length > 0) {
    const create = absent.map((a) => `temporal operator search-attribute create --namespace ${env.namespace} --name ${a.name} --type ${typeNames[a.type] ?? a.type}`);
    return fail(subject, `lacks the search attributes ${absent.map((a) => a.name).join(', ')}`, create.join('; '));
  }
  return pass(subject, `exists, with the search attributes ${attributes.map((a) => a.name).join(', ')}`);
}
