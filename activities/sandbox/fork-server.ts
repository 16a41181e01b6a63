import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { SandboxUnavailableError } from './errors.js';

type Frame = Record<string, unknown>;

const STARTUP_TIMEOUT_MS = 30_000;
const STDERR_KEPT = 8192;

/** The server died or stopped answering: the request may be re-run on a fresh server. */
export class ForkServerLostError extends Error {
  override name = 'ForkServerLostError';
}

/**
 * One warm Python fork server inside bubblewrap, speaking length-prefixed JSON frames on its
 * stdin/stdout. Serves one request at a time; the pool never sends a second before the first
 * returned.
 */
export class ForkServer {
  private buffer: Buffer = Buffer.alloc(0);
  private stderr = '';
  private waiting: { resolve(frame: Frame): void; reject(err: Error): void } | null = null;
  private exited = false;
  private nextId = 0;
  readonly closed: Promise<void>;

  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, Readable>) {
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
    child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-STDERR_KEPT);
    });
    child.stdin.on('error', () => {});
    child.once('exit', (code, signal) => {
      this.exited = true;
      const why = `fork server exited (${signal ?? `code ${code}`}): ${this.stderr.trim().slice(-2000)}`;
      this.waiting?.reject(new ForkServerLostError(why));
      this.waiting = null;
    });
  }

  static async start(command: string[]): Promise<ForkServer> {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const server = new ForkServer(child);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? new SandboxUnavailableError(`${file} is not installed: run infra/install-sandbox.sh`, { cause: err })
            : new SandboxUnavailableError(`cannot start the fork server: ${err.message}`, { cause: err }),
        ),
      );
    });
    await spawned;
    try {
      const ready = await server.nextFrame(STARTUP_TIMEOUT_MS);
      if (ready.ready !== true) throw new Error('unexpected first frame');
    } catch (err) {
      server.kill();
      throw new SandboxUnavailableError(`the fork server did not start: ${(err as Error).message}`, { cause: err });
    }
    return server;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Sends one request; resolves with its response frame, or rejects with ForkServerLostError. */
  async request(body: Frame, watchdogMs: number): Promise<Frame> {
    if (this.exited || this.waiting) throw new ForkServerLostError('fork server is not available');
    const id = ++this.nextId;
    const json = Buffer.from(JSON.stringify({ ...body, id }), 'utf8');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(json.length);
    const response = this.nextFrame(watchdogMs);
    this.child.stdin.write(Buffer.concat([header, json]));
    const frame = await response;
    if (frame.id !== id) {
      this.kill();
      throw new ForkServerLostError('fork server answered out of order');
    }
    return frame;
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  async close(): Promise<void> {
    if (!this.exited) this.child.stdin.end();
    const timer = setTimeout(() => this.kill(), 2000);
    try {
      await this.closed;
    } finally {
      clearTimeout(timer);
    }
  }

  private nextFrame(timeoutMs: number): Promise<Frame> {
    if (this.exited) return Promise.reject(new ForkServerLostError(`fork server exited: ${this.stderr.trim()}`));
    return new Promise<Frame>((resolve, reject) => {
      // The server enforces every program deadline itself; this only catches a server that hangs.
      const timer = setTimeout(() => {
        this.waiting = null;
        this.kill();
        reject(new ForkServerLostError(`fork server did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.drain();
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    this.drain();
  }

  private drain(): void {
    if (!this.waiting || this.buffer.length < 4) return;
    const size = this.buffer.readUInt32BE(0);
    if (this.buffer.length < 4 + size) return;
    const body = this.buffer.subarray(4, 4 + size).toString('utf8');
    this.buffer = this.buffer.subarray(4 + size);
    const waiting = this.waiting;
    this.waiting = null;
    try {
      waiting.resolve(JSON.parse(body) as Frame);
    } catch (err) {
      this.kill();
      waiting.reject(new ForkServerLostError('malformed frame from the fork server', { cause: err }));
    }
  }
}
