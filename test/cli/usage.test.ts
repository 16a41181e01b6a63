import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../support/config.js';
import { testS3Connection } from '../support/s3.js';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));
const commands = ['bench', 'check', 'eval', 'eval-solutions', 'exec', 'pause', 'preflight', 'report', 'resume', 'retry', 'run', 'schedule', 'schema', 'score', 'stack', 'stop', 'tensorboard', 'worker'];

/** The real CLI binary, without the stack's credentials; never throws. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWith({}, ...args);
}

/** The test S3 server's endpoint and credentials, as `stack env` gives them. */
function s3Env(): NodeJS.ProcessEnv {
  const s3 = testS3Connection();
  return { CODE_A1_S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region };
}

async function cliWith(extra: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_EC2_METADATA_DISABLED: 'true' };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  delete env.AWS_PROFILE;
  Object.assign(env, extra);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const noTrace = (text: string) => assert.doesNotMatch(text, /^\s+at /m, `a stack trace:\n${text}`);

describe('the command line', () => {
  it('prints the usage of every command and of each benchmark for --help', async () => {
    for (const command of commands) {
      const { code, stdout } = await cli(command, '--help');
      assert.equal(code, 0, command);
      assert.match(stdout, new RegExp(`^usage: code-a1 ${command}: `), command);
    }
    assert.match((await cli('bench', 'train', '--help')).stdout, /bench train \[--rollouts/);
  });

  for (const args of [
    ['run', '--bogus'],
    ['run', '--config'],
    ['schedule', 'create', '--cron', '0 2 * * *', '--config', 'x.json', '--iterations', '-1'],
    ['schedule', 'create', '--iterations=0'],
    ['preflight'],
    ['preflight', '--config', 'x.json', '--wait-for-workers', 'soon'],
    ['retry'],
    ['pause', 'a', 'b'],
  ]) {
    it(`answers a usage error with one line and exit status 2: ${args.join(' ')}`, async () => {
      const { code, stderr } = await cli(...args);
      assert.equal(code, 2);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr, /--help shows the usage/);
    });
  }

  it('says what failed, without a stack trace, when storage has no credentials; --verbose adds the trace', async () => {
    const { code, stderr } = await cli('report', 'r1', '--storage', 's3://no-such-bucket');
    assert.equal(code, 1);
    assert.match(stderr, /no S3 credentials .*stack env/);
    noTrace(stderr);
    assert.match((await cli('report', 'r1', '--storage', 's3://no-such-bucket', '--verbose')).stderr, /^\s+at /m);
  });

  for (const command of ['report', 'tensorboard']) {
    it(`names the missing bucket in one line, without a stack trace: ${command} --storage s3://no-such-bucket`, async () => {
      const { code, stderr } = await cliWith(s3Env(), command, 'r1', '--storage', 's3://no-such-bucket');
      assert.equal(code, 1);
      assert.match(stderr.split('\n')[0]!, new RegExp(`^code-a1 ${command}: StorageConfigError: .*s3://no-such-bucket: NoSuchBucket`));
      noTrace(stderr);
    });
  }

  it('says what failed, without a stack trace, when tensorboard has no S3 credentials', async () => {
    const { code, stderr } = await cli('tensorboard', 'r1', '--storage', 's3://no-such-bucket');
    assert.equal(code, 1);
    assert.match(stderr, /no S3 credentials .*stack env/);
    noTrace(stderr);
  });

  describe('the sandbox commands', () => {
    let dir: string;
    before(async () => {
      dir = await tempDir('code-a1-usage-');
      await writeFile(`${dir}/add.py`, 'def add(a, b):\n    return a + b\n');
      await writeFile(`${dir}/broken.py`, 'def add(a, b)\n    return a + b\n');
      await writeFile(`${dir}/tests.json`, JSON.stringify(['assert add(1, 2) == 3']));
      await writeFile(`${dir}/flood.py`, 'print("x" * 100_000)\n');
      await writeFile(`${dir}/solutions.jsonl`, `${JSON.stringify({ questionId: 'q', code: 'def f(): pass' })}\n`);
    });

    const refusals: [string, () => string[], RegExp][] = [
      ['check with a reference that does not compile', () => ['check', '--code', `${dir}/add.py`, '--entry-point', 'add', '--tests', `${dir}/tests.json`, '--reference', `${dir}/broken.py`], /--reference \S+broken\.py does not compile: SyntaxError: line 1/],
      ['check with an --entry-point the code does not define', () => ['check', '--code', `${dir}/add.py`, '--entry-point', 'plus', '--tests', `${dir}/tests.json`], /--code \S+add\.py does not define --entry-point plus/],
      // The dataset does not exist either: the details path is checked first, before any work.
      ['eval-solutions with a --details path it cannot write', () => ['eval-solutions', '--dataset', `${dir}/absent.parquet`, '--solutions', `${dir}/solutions.jsonl`, '--details', '/unwritable/x.json'], /--details \/unwritable\/x\.json cannot be written/],
    ];
    for (const [what, args, reason] of refusals) {
      it(`refuses ${what} in one line with a non-zero exit status`, async () => {
        const { code, stderr } = await cli(...args());
        assert.notEqual(code, 0);
        assert.equal(stderr.trim().split('\n').length, 1, stderr);
        assert.match(stderr, reason);
      });
    }

    it('exec reports output the sandbox cut off', async () => {
      const { code, stdout, stderr } = await cli('exec', '--program', `${dir}/flood.py`);
      assert.equal(code, 0, stderr);
      const result = JSON.parse(stdout) as { stdout: string; outputTruncated: boolean };
      assert.equal(result.outputTruncated, true);
      assert.equal(result.stdout.length, 65_536);
      assert.match(stderr, /output truncated: the sandbox keeps the first 65,536 bytes of each stream/);
    });
  });
});
