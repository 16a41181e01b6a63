import { Context, activityInfo, heartbeat, log } from '@temporalio/activity';
import type { StageResult } from '../../workflows/contract.js';
import type { Manifest } from '../records.js';
import type { ObjectStore } from '../storage/index.js';
import { getJson, putJsonOnce } from '../storage/index.js';
import { InvalidArtifactError } from '../artifact-errors.js';

/** A generation stage's manifest: the shards in order, plus the stage summary for a retry to return. */
export interface GenerationManifest extends Manifest {
  summary: Record<string, number>;
  /** Problems per shard, in batch order: lets a reader of some problems open only their shards. */
  problemsPerShard?: number;
}

export interface ShardProgress {
  shardsDone: number;
  shards: number;
}

export interface ShardedStage<R> {
  store: ObjectStore;
  /** Stage folder, e.g. `runs/<run>/iter-3/code`; shards and the manifest live under it. */
  prefix: string;
  shardCount: number;
  /** Produces shard `index`; must stop when `signal` aborts. */
  generate(index: number, signal: AbortSignal): Promise<R[]>;
  /** Additive counters of one shard's records; the stage summary is their sum. */
  count(records: R[]): Record<string, number>;
  /** Counters known before generation (e.g. problems in the batch), added once. */
  fixed?: Record<string, number>;
  /** How often to heartbeat while requests are in flight; must stay below the heartbeat timeout. */
  heartbeatMs?: number;
  /** Problems per shard, recorded in the manifest (see GenerationManifest). */
  problemsPerShard?: number;
}

export const shardKey = (prefix: string, index: number) => `${prefix}/shard-${String(index).padStart(5, '0')}.json`;
export const manifestKey = (prefix: string) => `${prefix}/manifest.json`;

/**
 * Runs a generation stage as independent shards at deterministic keys, each written once. A
 * retried attempt finds the shards earlier attempts stored (object storage is the record of
 * progress; heartbeat details only report it) and generates just the missing ones, so nothing
 * is sampled twice and nothing is lost. All missing shards are in flight together, their
 * requests bounded by the caller's limiter, so a small shard never leaves the endpoint idle.
 * A single request can outlast the heartbeat timeout, hence a heartbeat on a timer rather than
 * one per shard. The manifest is written last; its presence means the stage is done.
 */
export async function runShardedStage<R>(stage: ShardedStage<R>): Promise<StageResult> {
  const { store, prefix, shardCount } = stage;
  const key = manifestKey(prefix);
  const done = await getJson<GenerationManifest>(store, key);
  if (done) return { key, summary: done.summary };

  const keys = Array.from({ length: shardCount }, (_, i) => shardKey(prefix, i));
  const stored = new Set(await store.list(`${prefix}/`));
  const pending = keys.flatMap((k, i) => (stored.has(k) ? [] : [i]));
  const previous = activityInfo().heartbeatDetails as ShardProgress | undefined;
  const progress: ShardProgress = { shardsDone: shardCount - pending.length, shards: shardCount };
  log.info('generation stage starting', { prefix, shards: shardCount, stored: progress.shardsDone, previousAttempt: previous?.shardsDone });

  const totals: Record<string, number> = { ...stage.fixed };
  const add = (counts: Record<string, number>) => {
    for (const [name, value] of Object.entries(counts)) totals[name] = (totals[name] ?? 0) + value;
  };
  heartbeat(progress);
  const timer = setInterval(() => heartbeat(progress), stage.heartbeatMs ?? 5_000);
  // One failing shard stops the others: their work would be thrown away with the attempt anyway.
  const failed = new AbortController();
  const signal = AbortSignal.any([Context.current().cancellationSignal, failed.signal]);
  const started = performance.now();
  const fresh: Record<string, number> = {};
  try {
    const results = await Promise.allSettled(
      pending.map(async (index) => {
        try {
          const records = await putJsonOnce(store, keys[index]!, await stage.generate(index, signal));
          const counts = stage.count(records);
          for (const [name, value] of Object.entries(counts)) fresh[name] = (fresh[name] ?? 0) + value;
          progress.shardsDone++;
          heartbeat(progress);
        } catch (err) {
          failed.abort(err);
          throw err;
        }
      }),
    );
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - started) / 1000;
  add(fresh);

  // Shards from earlier attempts count too; read one at a time so a large stage never sits in memory whole.
  for (const index of keys.keys()) {
    if (pending.includes(index)) continue;
    const records = await getJson<R[]>(store, keys[index]!);
    if (!Array.isArray(records)) throw new InvalidArtifactError(`${store.uri}/${keys[index]}: expected a JSON array of rollouts`);
    add(stage.count(records));
  }
  totals.shards = shardCount;
  totals.resumedShards = shardCount - pending.length;
  // Throughput of the attempt that finished the stage; an attempt that generated nothing has none to report.
  if ((fresh.completionTokens ?? 0) > 0 && seconds > 0) {
    totals.generationSeconds = round(seconds, 3);
    totals.tokensPerSecond = round((fresh.completionTokens ?? 0) / seconds, 1);
  }
  const manifest = await putJsonOnce<GenerationManifest>(store, key, {
    shards: keys,
    count: totals.samples ?? 0,
    summary: totals,
    ...(stage.problemsPerShard ? { problemsPerShard: stage.problemsPerShard } : {}),
  });
  log.info('generation stage done', { prefix, ...manifest.summary });
  return { key, summary: manifest.summary };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
