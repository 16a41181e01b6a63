import { SandboxUnavailableError } from './errors.js';
import { ForkServer, ForkServerLostError } from './fork-server.js';

type Frame = Record<string, unknown>;

interface Slot {
  index: number;
  server: ForkServer | null;
  starting: Promise<ForkServer> | null;
  /** Requests given to this slot and not finished. */
  busy: number;
}

/**
 * Requests per server at a time: the one it runs and one queued behind it, so that it starts the
 * next as soon as it answers (on the 2-core VM the server otherwise waited ~0.3 ms per execution
 * for Node to send the next). Executions still run one at a time per server.
 */
const DEPTH = 2;

/**
 * A fixed set of fork servers, each running one request at a time. A server that dies is replaced
 * on its slot's next use; a request whose server died under it (or under the request before it)
 * is re-run once on a fresh server, and fails with SandboxUnavailableError if that dies too.
 */
export class ForkServerPool {
  private readonly slots: Slot[];
  private readonly waiters: { resolve(slot: Slot): void; reject(err: Error): void }[] = [];
  private closing = false;

  constructor(
    size: number,
    private readonly commandFor: (slot: number) => string[],
  ) {
    this.slots = Array.from({ length: size }, (_, index) => ({ index, server: null, starting: null, busy: 0 }));
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts every server now rather than on first use (fails early when bwrap is missing). */
  async warm(): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.serverOf(slot)));
  }

  async request(body: Frame, watchdogMs: number): Promise<Frame> {
    const slot = await this.acquire();
    try {
      for (let attempt = 0; ; attempt++) {
        const server = await this.serverOf(slot);
        try {
          const frame = await server.request(body, watchdogMs);
          if (typeof frame.infra === 'string') throw new ForkServerLostError(frame.infra);
          return frame;
        } catch (err) {
          if (!(err instanceof ForkServerLostError)) throw err;
          // An infrastructure failure inside a live server may have left it in a bad state.
          server.kill();
          if (slot.server === server) slot.server = null;
          if (attempt >= 1 || this.closing) {
            throw new SandboxUnavailableError(`sandbox execution failed twice: ${err.message}`, { cause: err });
          }
        }
      }
    } finally {
      this.release(slot);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new SandboxUnavailableError('the sandbox pool is closed'));
    await Promise.all(
      this.slots.map(async (slot) => {
        const server = slot.server ?? (await slot.starting?.catch(() => null)) ?? null;
        await server?.close();
      }),
    );
  }

  private async serverOf(slot: Slot): Promise<ForkServer> {
    if (this.closing) throw new SandboxUnavailableError('the sandbox pool is closed');
    if (slot.server?.alive) return slot.server;
    slot.starting ??= ForkServer.start(this.commandFor(slot.index)).finally(() => {
      slot.starting = null;
    });
    slot.server = await slot.starting;
    return slot.server;
  }

  /** The least busy slot, or a wait for one when every slot has DEPTH requests. */
  private acquire(): Promise<Slot> {
    if (this.closing) return Promise.reject(new SandboxUnavailableError('the sandbox pool is closed'));
    const slot = this.slots.reduce((best, s) => (s.busy < best.busy ? s : best));
    if (slot.busy < DEPTH) {
      slot.busy++;
      return Promise.resolve(slot);
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(slot: Slot): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(slot);
    else slot.busy--;
  }
}
