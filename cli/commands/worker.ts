import type { Worker } from '@temporalio/worker';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import type { WorkerEnv } from '../../config/worker-env.js';
import { shutdownTelemetry } from '../../workers/telemetry.js';

const factories: Record<string, () => Promise<(env: WorkerEnv) => Promise<Worker>>> = {
  orchestration: async () => (await import('../../workers/orchestration.js')).createOrchestrationWorker,
  gpu: async () => (await import('../../workers/gpu.js')).createGpuWorker,
  llm: async () => (await import('../../workers/llm.js')).createLlmWorker,
  sandbox: async () => (await import('../../workers/sandbox.js')).createSandboxWorker,
};

const hostPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const worker: Command = {
  summary: `run workers for task queues (${Object.keys(factories).join(', ')} or all; publish --host NAME beside a model server on another host) until SIGINT/SIGTERM`,
  async run(argv) {
    if (argv[0] === 'publish') {
      const host = argv[1] === '--host' ? argv[2] : undefined;
      if (!host || !hostPattern.test(host) || argv.length !== 3) throw new UsageError('usage: worker publish --host NAME (the `host` a model config names)');
      const env = parseWorkerEnv(process.env);
      const w = await (await import('../../workers/publish.js')).createPublishWorker(env, host);
      console.log(`publish worker for host ${host} running on ${env.temporalAddress} (${env.temporal.security})`);
      await w.run();
      await shutdownTelemetry();
      return 0;
    }
    const names = argv.length === 0 || argv.includes('all') ? Object.keys(factories) : argv;
    const unknown = names.filter((n) => !factories[n]);
    if (unknown.length) throw new UsageError(`unknown task queue(s): ${unknown.join(', ')}; expected ${Object.keys(factories).join(', ')} or all`);
    const env = parseWorkerEnv(process.env);
    const workers = await Promise.all(names.map(async (n) => (await factories[n]!())(env)));
    console.log(`workers running on ${env.temporalAddress} (${env.temporal.security}): ${names.join(', ')}`);
    await Promise.all(workers.map((w) => w.run()));
    await shutdownTelemetry();
    // The workers have stopped (SIGTERM, SIGINT). The sandbox's fork servers are child processes
    // with open pipes that would keep this process alive; they end with it (--die-with-parent).
    process.exit(0);
  },
};
export default worker;
