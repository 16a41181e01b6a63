import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ChatMessage {
  role: string;
  content: string;
}

/** Chooses choice `index` of a request: must be a function of its arguments for runs to be seeded. */
export type Script = (messages: ChatMessage[], seed: number, index: number) => string;

export interface ScriptedModelServer {
  baseUrl: string;
  model: string;
  /** Every directory a `POST /v1/load_checkpoint` loaded, in order. */
  readonly loads: string[];
  /** Every adapter name a `POST /v1/load_lora_adapter` loaded, in order. */
  readonly adapterLoads: string[];
  /** The adapters loaded now, by name. */
  readonly adapters: ReadonlyMap<string, string>;
  /** The `model` of every completion request answered, in order. */
  readonly requestedModels: string[];
  /** Completion requests answered. */
  readonly requests: number;
  /** Goes down and comes back on the same port as a fresh process: initial weights, new fingerprint. */
  restart(downMs?: number): Promise<void>;
  /** The next completion request kills the server mid-answer; it then restarts as `restart` does. */
  crashOnNextCompletion(downMs?: number): void;
  /** Crashes that `crashOnNextCompletion` armed and that happened. */
  readonly crashes: number;
  /** While true, `POST /v1/load_checkpoint` answers 200, reports the new path and keeps answering from the old weights (a reload bug vLLM has shipped). */
  ignoreReloads: boolean;
  /** What the server answers from; replaceable between runs. */
  script: Script;
  close(): Promise<void>;
}

/**
 * A test double for the embedded model server (python/model_server.py) that speaks its protocol
 * (`/v1/models`, `/v1/chat/completions`, `/v1/load_checkpoint`, vLLM's runtime LoRA routes
 * `/v1/load_lora_adapter` and `/v1/unload_lora_adapter`, the per-process fingerprint) but
 * answers from a script, so a whole-run test can decide which candidates are right and which tests
 * are valid. It returns no token ids: the trainer then tokenises the text with the chat template.
 * Asked for log-probs (the on-policy probe), it answers with those recorded in the loaded
 * checkpoint's probe.json, as a server serving those weights would.
 */
export async function startScriptedModelServer(opts: { model: string; checkpoint: string; script: Script }): Promise<ScriptedModelServer> {
  let instance = '';
  let path = '';
  /** The weights answers come from: what was loaded, unless a reload was ignored. */
  let weights = '';
  let version = 0;
  let requests = 0;
  let crashes = 0;
  let crashArmed: number | undefined;
  const control = { ignoreReloads: false, script: opts.script };
  const loads: string[] = [];
  const adapterLoads: string[] = [];
  const requestedModels: string[] = [];
  const adapters = new Map<string, string>();
  const fresh = () => {
    instance = randomBytes(4).toString('hex');
    path = opts.checkpoint;
    weights = path;
    version = 0;
    adapters.clear();
  };
  const fingerprint = () => `ckpt-${instance}-v${version}`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {};
    const reply = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const route = `${req.method} ${req.url?.split('?')[0]}`;
    if (route === 'GET /v1/models') {
      const cards = [...adapters].map(([id, root]) => ({ id, object: 'model', root, parent: opts.model, checkpoint: { path: root, version, fingerprint: `${fingerprint()}-${id}` } }));
      return reply(200, { object: 'list', data: [{ id: opts.model, object: 'model', root: path, checkpoint: { path, version, fingerprint: fingerprint() } }, ...cards] });
    }
    if (route === 'POST /v1/load_lora_adapter') {
      const name = String(body.lora_name);
      if (adapters.has(name)) return reply(400, { error: { message: `The lora adapter '${name}' has already been loaded.` } });
      adapters.set(name, String(body.lora_path));
      adapterLoads.push(name);
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end(`Success: LoRA adapter '${name}' added successfully.`);
    }
    if (route === 'POST /v1/unload_lora_adapter') {
      const name = String(body.lora_name);
      if (!adapters.delete(name)) return reply(404, { error: { message: `The lora adapter '${name}' cannot be found.` } });
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end(`Success: LoRA adapter '${name}' removed successfully.`);
    }
    if (route === 'POST /v1/load_checkpoint') {
      // An ignored reload still reports the new path, as a server that believes it loaded it does.
      path = String(body.path);
      if (!control.ignoreReloads) weights = path;
      version += 1;
      loads.push(path);
      return reply(200, { model: opts.model, path, version });
    }
    if (route === 'POST /v1/chat/completions') {
      if (crashArmed !== undefined) {
        const downMs = crashArmed;
        crashArmed = undefined;
        crashes += 1;
        req.socket.destroy();
        return void restart(downMs);
      }
      const adapter = adapters.has(String(body.model)) ? String(body.model) : undefined;
      if (body.model !== opts.model && !adapter) return reply(404, { error: { message: `The model \`${String(body.model)}\` does not exist` } });
      if (body.logprobs === true) {
        // The on-policy probe: a server serving the loaded weights answers with their log-probs,
        // which the trainer recorded beside them (probe.json); the initial model has none.
        const recorded = await readFile(join(adapter ? adapters.get(adapter)! : weights, 'probe.json'), 'utf8').then(
          (t) => (JSON.parse(t) as { current: { tokenIds: number[]; tokens: string[]; logprobs: number[] } }).current,
          () => ({ tokenIds: [0], tokens: ['x'], logprobs: [-1] }),
        );
        const content = recorded.tokens.map((token, i) => ({ token, logprob: recorded.logprobs[i], bytes: null, top_logprobs: [] }));
        const choice = { index: 0, message: { role: 'assistant', content: recorded.tokens.join('') }, logprobs: { content }, token_ids: recorded.tokenIds, finish_reason: 'length' };
        return reply(200, { object: 'chat.completion', model: body.model, system_fingerprint: fingerprint(), choices: [choice], usage: { prompt_tokens: 0, completion_tokens: 0 } });
      }
      requests += 1;
      requestedModels.push(String(body.model));
      const messages = body.messages as ChatMessage[];
      const n = Number(body.n ?? 1);
      const seed = Number(body.seed ?? 0);
      const choices = Array.from({ length: n }, (_, index) => ({
        index,
        message: { role: 'assistant', content: control.script(messages, seed, index) },
        finish_reason: 'stop',
      }));
      return reply(200, { object: 'chat.completion', model: body.model, system_fingerprint: adapter ? `${fingerprint()}-${adapter}` : fingerprint(), choices, usage: { prompt_tokens: 0, completion_tokens: 0 } });
    }
    reply(404, { error: { message: `no route ${route}` } });
  }

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => void handle(req, res).catch((err) => (res.writeHead(500), res.end(String(err)))));
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  fresh();
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  async function restart(downMs = 2_000) {
    await stop();
    await new Promise((r) => setTimeout(r, downMs));
    fresh();
    await listen(port);
  }
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    model: opts.model,
    loads,
    adapterLoads,
    adapters,
    requestedModels,
    get requests() {
      return requests;
    },
    get crashes() {
      return crashes;
    },
    restart,
    crashOnNextCompletion(downMs = 2_000) {
      crashArmed = downMs;
    },
    get ignoreReloads() {
      return control.ignoreReloads;
    },
    set ignoreReloads(on: boolean) {
      control.ignoreReloads = on;
    },
    get script() {
      return control.script;
    },
    set script(script: Script) {
      control.script = script;
    },
    close: stop,
  };
}
