import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));
const commands = ['bench', 'check', 'eval', 'eval-solutions', 'exec', 'report', 'resume', 'run', 'schedule', 'schema', 'score', 'stack', 'tensorboard', 'worker'];

/** The real CLI binary, without the stack's credentials; never throws. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_EC2_METADATA_DISABLED: 'true' };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  delete env.AWS_PROFILE;
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

  for (const args of [['run', '--bogus'], ['run', '--config'], ['schedule', 'create', '--cron', '0 2 * * *', '--config', 'x.json', '--iterations', '-1'], ['schedule', 'create', '--iterations=0']]) {
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
});
