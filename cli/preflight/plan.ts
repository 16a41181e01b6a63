import type { EvaluationConfig } from '../../activities/evaluation/config.js';
import { replicasOf } from '../../config/run-config.js';
import type { ModelEndpoint, RunConfig } from '../../config/run-config.js';
import { keys, publishTaskQueue, taskQueues } from '../../workflows/contract.js';

/** One model server, however many config fields name it (both roles on one server, replicas). */
export interface ServerUnderCheck {
  /** The config fields that name it: `models.code`, `models.test.replicas[0]`. */
  fields: string[];
  endpoint: ModelEndpoint;
  baseUrl: string;
  /** How a run publishes weights to it; absent where nothing is published (evaluation). */
  publishing?: { lora?: { rank: number } };
}

export interface QueueUnderCheck {
  name: string;
  /** Workflow tasks (the orchestration worker) and/or activity tasks. */
  types: ('workflow' | 'activity')[];
  /** The command that starts its worker. */
  worker: string;
}

/** What a run or an evaluation will touch, which the pre-flight checks before it starts. */
export interface PreflightPlan {
  /** `run local-demo`, `evaluation humaneval-1`. */
  subject: string;
  storageUri: string;
  /** Where the storage probe object goes: under the run's own prefix. */
  probePrefix: string;
  datasets: { field: string; uri: string; sources?: readonly string[]; goldenTests: boolean }[];
  servers: ServerUnderCheck[];
  queues: QueueUnderCheck[];
  /** `trainer.devices`, where the plan trains, and the ID of the workflow that asks the gpu worker for its devices. */
  trainerDevices?: number;
  deviceReportId?: string;
}

const worker = (queue: keyof typeof taskQueues) => `npx code-a1 worker ${queue}`;

export function runPlan(config: RunConfig): PreflightPlan {
  const publishing = config.trainer.lora ? { lora: { rank: config.trainer.lora.rank } } : {};
  const named = (['code', 'test'] as const).flatMap((role) => everyServer(`models.${role}`, config.models[role]));
  const hosts = [...new Set((['code', 'test'] as const).flatMap((role) => replicasOf(config.models[role]).flatMap((r) => (r.host ? [r.host] : []))))];
  return {
    subject: `run ${config.runId}`,
    storageUri: config.storageUri,
    probePrefix: keys.run(config.runId),
    datasets: [
      { field: 'dataset.uri', uri: config.dataset.uri, ...(config.dataset.sources ? { sources: config.dataset.sources } : {}), goldenTests: false },
      ...(config.evaluation.every > 0
        ? [{ field: 'evaluation.datasetUri', uri: config.evaluation.datasetUri, ...(config.evaluation.sources ? { sources: config.evaluation.sources } : {}), goldenTests: true }]
        : []),
    ],
    servers: byServer(named).map((s) => ({ ...s, publishing })),
    queues: [
      { name: taskQueues.orchestration, types: ['workflow', 'activity'], worker: worker('orchestration') },
      { name: taskQueues.llm, types: ['activity'], worker: worker('llm') },
      { name: taskQueues.sandbox, types: ['activity'], worker: worker('sandbox') },
      { name: taskQueues.gpu, types: ['activity'], worker: worker('gpu') },
      ...hosts.map((host): QueueUnderCheck => ({
        name: publishTaskQueue(host),
        types: ['activity'],
        worker: `npx code-a1 worker publish --host ${host} (on ${host}, beside its model server)`,
      })),
    ],
    trainerDevices: config.trainer.devices,
    deviceReportId: `${config.runId}/preflight-devices`,
  };
}

export function evaluationPlan(config: EvaluationConfig): PreflightPlan {
  const { dataset } = config;
  return {
    subject: `evaluation ${config.evalId}`,
    storageUri: config.storageUri,
    probePrefix: `evals/${config.evalId}`,
    datasets: [{ field: 'dataset.uri', uri: dataset.uri, ...(dataset.sources ? { sources: dataset.sources } : {}), goldenTests: true }],
    servers: byServer([...everyServer('model', config.model), ...(config.tests ? everyServer('tests.model', config.tests.model) : [])]),
    queues: [
      { name: taskQueues.orchestration, types: ['workflow'], worker: worker('orchestration') },
      { name: taskQueues.llm, types: ['activity'], worker: worker('llm') },
      { name: taskQueues.sandbox, types: ['activity'], worker: worker('sandbox') },
    ],
  };
}

/** The role's first server and each replica, under the config field that names it. */
function everyServer(field: string, endpoint: ModelEndpoint): [string, ModelEndpoint][] {
  return replicasOf(endpoint).map(({ baseUrl }, i) => [i === 0 ? field : `${field}.replicas[${i - 1}]`, { ...endpoint, baseUrl }]);
}

/** Fields that name the same server and model are checked once. */
function byServer(named: [string, ModelEndpoint][]): ServerUnderCheck[] {
  const servers = new Map<string, ServerUnderCheck>();
  for (const [field, endpoint] of named) {
    const id = JSON.stringify([endpoint.baseUrl.replace(/\/+$/, ''), endpoint.model, endpoint.server, endpoint.apiKeyEnv]);
    const known = servers.get(id);
    if (known) known.fields.push(field);
    else servers.set(id, { fields: [field], endpoint, baseUrl: endpoint.baseUrl });
  }
  return [...servers.values()];
}
