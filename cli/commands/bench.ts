import type { Command } from '../command.js';
import { UsageError } from '../command.js';

// One module per benchmark, loaded only when run.
const benchmarks: Record<string, () => Promise<{ default: Command }>> = {
  sandbox: () => import('./bench/sandbox.js'),
  generate: () => import('./bench/generate.js'),
  train: () => import('./bench/train.js'),
  orchestration: () => import('./bench/orchestration.js'),
  'mistake-book': () => import('./bench/mistake-book.js'),
  scale: () => import('./bench/scale.js'),
};

const bench: Command = {
  summary: `run a benchmark and print one JSON line: bench <${Object.keys(benchmarks).join('|')}> [options]`,
  async run(argv) {
    const [name, ...rest] = argv;
    const load = name ? benchmarks[name] : undefined;
    if (!load) throw new UsageError(`expected a benchmark: ${Object.keys(benchmarks).join(', ')}`);
    return (await load()).default.run(rest);
  },
  async help([name]) {
    const load = name ? benchmarks[name] : undefined;
    return load ? (await load()).default.summary : bench.summary;
  },
};
export default bench;
