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

interface Pending {
  id: number;
  watchdogMs: number;
  resolve(frame: Frame): void;
  reject(err: Error): void;
}

/**
 * One warm Python fork server inside bubblewrap, speaking length-prefixed JSON frames on its
 * stdin/stdout. The server runs one request at a time and answers in order; requests may be queued
 * behind the running one (the pool queues one), so that the server starts the next as soon as it
 * has answered instead of waiting for this process to send it.
 */
export class ForkServer {
  private buffer: Buffer = Buffer.alloc(0);
  private stderr = '';
  /** The first frame, {ready: true}, before any request. */
  private startup: { resolve(frame: Frame): void; reject(err: Error): void } | null = null;
  /** Requests sent and not answered, in the order sent; the first is the one running. */
  private readonly pending: Pending[] = [];
  private watchdog: NodeJS.Timeout | null = null;
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
      this.failAll(new ForkServerLostError(why));
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
      const ready = await server.readyFrame();
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

  /** Requests sent and not yet answered. */
  get queued(): number {
    return this.pending.length;
  }

  /**
   * Sends one request; resolves with its response frame, or rejects with ForkServerLostError.
   * The watchdog runs from when the server starts on this request, after those queued before it.
   */
  request(body: Frame, watchdogMs: number): Promise<Frame> {
    if (this.exited) return Promise.reject(new ForkServerLostError('fork server is not available'));
    const id = ++this.nextId;
    const json = Buffer.from(JSON.stringify({ ...body, id }), 'utf8');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(json.length);
    const answered = new Promise<Frame>((resolve, reject) => {
      this.pending.push({ id, watchdogMs, resolve, reject });
    });
    if (this.pending.length === 1) this.armWatchdog();
    this.child.stdin.write(Buffer.concat([header, json]));
    return answered;
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

  private readyFrame(): Promise<Frame> {
    if (this.exited) return Promise.reject(new ForkServerLostError(`fork server exited: ${this.stderr.trim()}`));
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.startup = null;
        reject(new ForkServerLostError(`fork server did not answer within ${STARTUP_TIMEOUT_MS} ms`));
      }, STARTUP_TIMEOUT_MS);
      this.startup = {
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

  /** The server enforces every program deadline itself; this only catches a server that hangs. */
  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    const running = this.pending[0];
    if (!running) return;
    this.watchdog = setTimeout(() => {
      this.kill();
      this.failAll(new ForkServerLostError(`fork server did not answer within ${running.watchdogMs} ms`));
    }, running.watchdogMs);
  }

  private failAll(err: Error): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    this.startup?.reject(err);
    this.startup = null;
    for (const waiting of this.pending.splice(0)) waiting.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    this.drain();
  }

  private drain(): void {
    while (this.buffer.length >= 4 && (this.startup || this.pending.length)) {
      const size = this.buffer.readUInt32BE(0);
      if (this.buffer.length < 4 + size) return;
      const body = this.buffer.subarray(4, 4 + size).toString('utf8');
      this.buffer = this.buffer.subarray(4 + size);
      let frame: Frame;
      try {
        frame = JSON.parse(body) as Frame;
      } catch (err) {
        this.kill();
        this.failAll(new ForkServerLostError('malformed frame from the fork server', { cause: err }));
        return;
      }
      if (this.startup) {
        this.startup.resolve(frame);
        this.startup = null;
        continue;
      }
      const answered = this.pending.shift()!;
      if (frame.id !== answered.id) {
        this.pending.unshift(answered);
        this.kill();
        this.failAll(new ForkServerLostError('fork server answered out of order'));
        return;
      }
      this.armWatchdog();
      answered.resolve(frame);
    }
  }
}
