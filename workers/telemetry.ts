import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import { Runtime } from '@temporalio/worker';
import type { ActivityInterceptorsFactory, WorkerOptions } from '@temporalio/worker';
import type { TelemetryEnv } from '../config/worker-env.js';
import { recordStageMetrics } from '../activities/stage-metrics.js';

/** What a worker adds to its options for the process's telemetry. */
export type WorkerTelemetry = Pick<WorkerOptions, 'plugins'> & { activityInterceptors: ActivityInterceptorsFactory[] };

let processTelemetry: { env: TelemetryEnv; worker: WorkerTelemetry; shutdown(): Promise<void> } | undefined;

/**
 * The process's telemetry, set up by its first worker before any connection opens (the SDK's
 * runtime can be installed once per process, before its first use):
 * - metrics (CODE_A1_METRICS_ADDRESS): the SDK's Prometheus endpoint at `/metrics`, where the
 *   project's stage metrics (activities/stage-metrics.ts) go out too, through the activities'
 *   metric meter;
 * - traces (OTEL_EXPORTER_OTLP_ENDPOINT): the SDK's OpenTelemetry plugin (client, workflow and
 *   activity interceptors, and the sink that exports workflow spans from the sandbox) plus spans
 *   for `fetch` calls made inside activities, batched to an OTLP/HTTP collector.
 * Each is off when its variable is unset; with both off the worker is as without this module.
 */
export function workerTelemetry(env: TelemetryEnv): WorkerTelemetry {
  if (processTelemetry) {
    if (processTelemetry.env.metricsAddress !== env.metricsAddress || processTelemetry.env.otlpEndpoint !== env.otlpEndpoint) {
      throw new Error('every worker of a process shares its telemetry: create them from one environment');
    }
    return processTelemetry.worker;
  }
  if (env.metricsAddress) Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: env.metricsAddress } } } });
  const tracing = env.otlpEndpoint ? startTracing(env.otlpEndpoint, env.serviceName) : undefined;
  processTelemetry = {
    env,
    worker: {
      ...(tracing ? { plugins: [tracing.plugin] } : {}),
      activityInterceptors: env.metricsAddress ? [stageMetricsInterceptor] : [],
    },
    shutdown: async () => tracing?.provider.shutdown(),
  };
  return processTelemetry.worker;
}

/** Sends the spans still batched; call once the process's workers have stopped. */
export async function shutdownTelemetry(): Promise<void> {
  await processTelemetry?.shutdown();
}

function startTracing(endpoint: string, serviceName: string) {
  const resource = new Resource({ 'service.name': serviceName });
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // Global provider, async-hooks context and W3C propagation: activity spans parent the fetch spans.
  provider.register();
  // Only requests inside a traced activity: a worker's other traffic would be noise.
  registerInstrumentations({ instrumentations: [new UndiciInstrumentation({ requireParentforSpans: true })] });
  return { provider, plugin: new OpenTelemetryPlugin({ resource, spanProcessor }) };
}

const stageMetricsInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const started = performance.now();
      const result = await next(input);
      recordStageMetrics(ctx.metricMeter, ctx.info.activityType, input.args[0], result, (performance.now() - started) / 1000);
      return result;
    },
  },
});
