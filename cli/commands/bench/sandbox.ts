import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { Command } from '../../command.js';
import { createSandbox, type RunTestsResult, type Sandbox, type TestCase } from '../../../activities/sandbox/index.js';
import { defaultPython, readableAncestors, resolvePython, type PythonRuntime } from '../../../activities/sandbox/runtime.js';
import { parseCommandLine, positiveInt } from '../exec.js';

/**
 * The execute stage's workload: candidate programs, each run against 8 asserts (the paper's T).
 * Candidates are correct, subtly wrong or crashing, like sampled code; the asserts were validated
 * against the reference beforehand (not timed). Run two ways at the same concurrency: the fork
 * server pool, and one freshly spawned isolated interpreter per program (SandboxFusion-style).
 */
const problems = [
  {
    entry: 'sum_squares',
    reference: 'def sum_squares(xs):\n    return sum(x * x for x in xs)\n',
    variants: ['def sum_squares(xs):\n    return sum(x * x for x in xs[1:])\n', 'def sum_squares(xs):\n    return sum(xs) ** 2 // len(xs)\n'],
    assert: (r: () => number) => `assert sum_squares(${JSON.stringify(Array.from({ length: 1 + (r() % 12) }, () => (r() % 41) - 20))}) == 0`,
  },
  {
    entry: 'sort_desc',
    reference: 'def sort_desc(xs):\n    return sorted(xs, reverse=True)\n',
    variants: ['def sort_desc(xs):\n    return sorted(xs)[::-1] if len(xs) < 6 else sorted(xs)\n', 'def sort_desc(xs):\n    xs.sort()\n    return xs.reverse()\n'],
    assert: (r: () => number) => `assert sort_desc(${JSON.stringify(Array.from({ length: r() % 10 }, () => r() % 100))}) == []`,
  },
  {
    entry: 'count_vowels',
    reference: 'def count_vowels(s):\n    return sum(c in "aeiouAEIOU" for c in s)\n',
    variants: ['def count_vowels(s):\n    return sum(c in "aeio" for c in s)\n', 'def count_vowels(s):\n    return len([c for c in s.lower() if c in "aeiou"])\n'],
    assert: (r: () => number) => `assert count_vowels(${JSON.stringify(Array.from({ length: r() % 20 }, () => 'abcdeEfghiIjkloOpqrstuUvwxyz '[r() % 29]).join(''))}) == 0`,
  },
  {
    entry: 'fib',
    reference: 'def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n',
    variants: ['def fib(n):\n    a, b = 0, 1\n    for _ in range(n - 1):\n        a, b = b, a + b\n    return a\n', 'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n'],
    assert: (r: () => number) => `assert fib(${r() % 20}) == 0`,
  },
  {
    entry: 'dedupe',
    reference: 'def dedupe(xs):\n    seen = set()\n    return [x for x in xs if not (x in seen or seen.add(x))]\n',
    variants: ['def dedupe(xs):\n    return list(set(xs))\n', 'def dedupe(xs):\n    return list(dict.fromkeys(xs))\n'],
    assert: (r: () => number) => `assert dedupe(${JSON.stringify(Array.from({ length: r() % 12 }, () => r() % 6))}) == []`,
  },
];

interface Program {
  code: string;
  entry: string;
  tests: TestCase[];
  /** The same asserts as Python text, with the reference's values, for the baseline. */
  asserts: { call: string; expected: string }[];
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 8;
  };
}

async function buildWorkload(sandbox: Sandbox, count: number): Promise<Program[]> {
  const r = rng(20_260_315);
  const specs = Array.from({ length: count }, (_, i) => {
    const problem = problems[i % problems.length]!;
    const pick = r() % 4;
    const code = pick < 2 ? problem.reference : pick === 2 ? problem.variants[0]! : problem.variants[1]!;
    return { problem, code, asserts: Array.from({ length: 8 }, () => problem.assert(r)) };
  });
  return runAll(specs, sandbox.concurrency, async ({ problem, code, asserts }) => {
    const validation = await sandbox.validateTests({ reference: problem.reference, entryPoint: problem.entry, asserts, perTestTimeoutMs: 2000 });
    // The synthetic asserts claim a placeholder value: take the reference's instead.
    const tests = validation.tests.flatMap((t) => (t.call && t.expected ? [{ call: t.call, expected: t.expected, repr: t.expectedRepr! }] : []));
    return {
      code,
      entry: problem.entry,
      tests: tests.map(({ call, expected }) => ({ call, expected })),
      asserts: tests.map((t) => ({ call: t.call.text, expected: t.repr })),
    };
  });
}

async function runAll<T, R>(items: T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i]!);
      }
    }),
  );
  return out;
}

/** The baseline's isolation: the same namespaces, read-only runtime, uid, limits and empty environment. */
function baselineCommand(runtime: PythonRuntime, program: string): string[] {
  const binds = [runtime.basePrefix, '/usr/lib', '/usr/lib64', '/usr/bin/setpriv', '/usr/bin/prlimit'];
  return [
    'bwrap', '--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup-try',
    '--die-with-parent', '--new-session', '--clearenv',
    ...readableAncestors(binds),
    ...binds.flatMap((p) => ['--ro-bind', p, p]),
    '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64',
    '--dev', '/dev', '--tmpfs', '/tmp', '--chdir', '/tmp',
    '/usr/bin/prlimit', '--as=1073741824', '--cpu=10', '--fsize=16777216', '--nproc=64', '--nofile=256',
    '/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--no-new-privs',
    runtime.executable, '-I', '-S', '-c', program,
  ];
}

function baselineProgram(p: Program): string {
  const checks = p.asserts.map((a) => `    (lambda: ${a.call}, lambda: ${a.expected}),`).join('\n');
  return `${p.code}\nimport json\n__results = []\nfor __call, __expected in [\n${checks}\n]:\n    try:\n        __results.append(__call() == __expected())\n    except Exception:\n        __results.append(False)\nprint(json.dumps(__results))\n`;
}

function spawnBaseline(runtime: PythonRuntime, p: Program): Promise<boolean[]> {
  const [file, ...args] = baselineCommand(runtime, baselineProgram(p)) as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() || 'null') ?? p.asserts.map(() => false));
      } catch {
        resolve(p.asserts.map(() => false));
      }
    });
  });
}

/** Runs both, `a` first when `aFirst`, and returns their results as [a, b]. */
async function inOrder<A, B>(aFirst: boolean, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  if (aFirst) {
    const first = await a();
    return [first, await b()];
  }
  const first = await b();
  return [await a(), first];
}

function median(sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function timed<R>(work: () => Promise<R>): Promise<{ result: R; seconds: number }> {
  const started = process.hrtime.bigint();
  const result = await work();
  return { result, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

const benchSandbox: Command = {
  summary: 'sandbox throughput: fork-server pool vs a fresh isolated interpreter per program',
  async run(argv) {
    const { values } = parseCommandLine(() =>
      parseArgs({
        args: argv,
        options: { programs: { type: 'string' }, 'baseline-programs': { type: 'string' }, concurrency: { type: 'string' }, rounds: { type: 'string' } },
        strict: true,
        allowPositionals: false,
      }),
    );
    const programs = positiveInt(values.programs, '--programs', 3000);
    const baselinePrograms = positiveInt(values['baseline-programs'], '--baseline-programs', 300);
    const concurrency = positiveInt(values.concurrency, '--concurrency', availableParallelism());
    const rounds = positiveInt(values.rounds, '--rounds', 5);
    const runtime = await resolvePython(defaultPython);
    const sandbox = await createSandbox({ concurrency });
    try {
      const workload = await buildWorkload(sandbox, programs);
      const sample = workload.slice(0, baselinePrograms);
      // The two ways alternate in rounds, each round timing a slice of both, so that load from
      // elsewhere on a shared machine falls on both sides; the ratio is the median of the rounds'.
      const executorResults: RunTestsResult[] = [];
      const baselineResults: boolean[][] = [];
      const perRound: Array<{ executor: number; baseline: number }> = [];
      let executorSeconds = 0;
      let baselineSeconds = 0;
      for (let r = 0; r < rounds; r++) {
        const mine = workload.slice(Math.floor((r * programs) / rounds), Math.floor(((r + 1) * programs) / rounds));
        const theirs = sample.slice(Math.floor((r * sample.length) / rounds), Math.floor(((r + 1) * sample.length) / rounds));
        const runExecutor = () =>
          timed(() => runAll(mine, concurrency * 2, (p) => sandbox.runTests({ code: p.code, entryPoint: p.entry, tests: p.tests, perTestTimeoutMs: 2000 })));
        const runBaseline = () => timed(() => runAll(theirs, concurrency, (p) => spawnBaseline(runtime, p)));
        // Which goes first alternates too, so neither always runs right after the other's teardown.
        const [executorRound, baseline] = await inOrder(r % 2 === 0, runExecutor, runBaseline);
        executorResults.push(...executorRound.result);
        baselineResults.push(...baseline.result);
        executorSeconds += executorRound.seconds;
        baselineSeconds += baseline.seconds;
        perRound.push({ executor: mine.length / executorRound.seconds, baseline: theirs.length / baseline.seconds });
      }
      // Both ways must agree on every assert of the programs both ran, or the comparison means nothing.
      const disagreements = sample.filter((_, i) =>
        executorResults[i]!.tests.some((t, j) => (t.outcome === 'pass') !== baselineResults[i]![j]),
      ).length;
      const ratios = perRound.map((x) => x.executor / x.baseline).sort((a, b) => a - b);
      console.log(
        JSON.stringify({
          benchmark: 'sandbox',
          concurrency,
          assertsPerProgram: 8,
          rounds,
          executor: { programs, seconds: +executorSeconds.toFixed(3), programsPerSecond: +(programs / executorSeconds).toFixed(1) },
          baseline: { programs: sample.length, seconds: +baselineSeconds.toFixed(3), programsPerSecond: +(sample.length / baselineSeconds).toFixed(1) },
          ratio: +median(ratios).toFixed(2),
          roundRatios: ratios.map((x) => +x.toFixed(2)),
          disagreements,
        }),
      );
      return disagreements === 0 ? 0 : 1;
    } finally {
      await sandbox.close();
    }
  },
};
export default benchSandbox;
