import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { S3Connection } from '../activities/storage/s3-store.js';
import { ConfigError, formatIssues } from './run-config.js';
import { parseTemporalConnection } from './temporal-connection.js';
import type { TemporalConnection } from './temporal-connection.js';

/**
 * Where a worker process finds its services. Read from the environment once, in the worker
 * entry points; secrets stay here and never enter workflow history.
 */
const workerEnvSchema = z.object({
  /** S3-protocol endpoint for s3:// storage URIs; unset means AWS S3 itself. */
  CODE_A1_S3_ENDPOINT: z.url().optional(),
  AWS_REGION: z.string().default('us-east-1'),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  /** Concurrent activities per worker; the sandbox worker defaults to one per core. */
  CODE_A1_MAX_ACTIVITIES: z.coerce.number().int().positive().optional(),
  /** Scratch space for checkpoints and trainer I/O. */
  CODE_A1_WORK_DIR: z.string().optional(),
  /** Installed models (`model:<name>` checkpoints) live under `<cache>/models`. */
  CODE_A1_CACHE: z.string().optional(),
  /** Also keep each run's TensorBoard event files in `<dir>/<runId>/` on the orchestration worker's machine. */
  CODE_A1_TENSORBOARD_DIR: z.string().optional(),
  HOME: z.string().optional(),
  /** host:port for the Prometheus endpoint (`/metrics`) of the SDK's and the project's metrics; unset: none. */
  CODE_A1_METRICS_ADDRESS: z.string().regex(/^\S+:\d+$/, 'expected host:port, e.g. 0.0.0.0:9464').optional(),
  /** OTLP/HTTP collector base URL (traces go to `<url>/v1/traces`); unset: no tracing. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default('code-a1-worker'),
});

export interface WorkerEnv {
  /** TLS, client certificate and API key included (config/temporal-connection.ts). */
  temporal: TemporalConnection;
  temporalAddress: string;
  namespace: string;
  s3: S3Connection;
  maxActivities: number | undefined;
  workDir: string;
  modelsDir: string;
  /** Local TensorBoard log dir for training curves; unset: curves go to object storage only. */
  tensorboardDir: string | undefined;
  telemetry: TelemetryEnv;
  /** The raw environment, for API keys named by a run config's `apiKeyEnv`. */
  secrets: Readonly<Record<string, string | undefined>>;
}

export interface TelemetryEnv {
  metricsAddress: string | undefined;
  otlpEndpoint: string | undefined;
  serviceName: string;
}

export function parseWorkerEnv(env: NodeJS.ProcessEnv): WorkerEnv {
  const parsed = workerEnvSchema.safeParse(env);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    throw new ConfigError(`invalid worker environment: ${issues.join('; ')}`, issues);
  }
  const e = parsed.data;
  const temporal = parseTemporalConnection(env);
  return {
    temporal,
    temporalAddress: temporal.address,
    namespace: temporal.namespace,
    s3: {
      endpoint: e.CODE_A1_S3_ENDPOINT,
      region: e.AWS_REGION,
      accessKeyId: e.AWS_ACCESS_KEY_ID,
      secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
      // Local S3 servers address buckets by path; AWS itself prefers virtual hosts.
      forcePathStyle: e.CODE_A1_S3_ENDPOINT !== undefined,
    },
    maxActivities: e.CODE_A1_MAX_ACTIVITIES,
    workDir: e.CODE_A1_WORK_DIR ?? join(tmpdir(), 'code-a1'),
    modelsDir: join(e.CODE_A1_CACHE ?? join(e.HOME ?? homedir(), '.cache', 'code-a1'), 'models'),
    tensorboardDir: e.CODE_A1_TENSORBOARD_DIR,
    telemetry: { metricsAddress: e.CODE_A1_METRICS_ADDRESS, otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME },
    secrets: env,
  };
}
