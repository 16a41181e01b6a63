import { backendFor } from '../../activities/llm/backends/index.js';
import { ModelConfigError } from '../../activities/llm/errors.js';
import { modelCards } from '../../activities/llm/model-cards.js';
import { greedyWithLogprobs, servedSide } from '../../activities/llm/probe.js';
import { serverApi } from '../../activities/llm/server-api.js';
import type { ServerApi } from '../../activities/llm/server-api.js';
import type { WorkerEnv } from '../../config/worker-env.js';
import type { Finding } from './finding.js';
import { describe, fail, pass } from './finding.js';
import type { ServerUnderCheck } from './plan.js';
import { checkPublishRoutes } from './publish-routes.js';

/** One call to a model server; a loaded server answers these in well under a second. */
const callTimeoutMs = 20_000;

/**
 * The server lists the configured model in `/v1/models` and answers a one-token greedy chat with
 * log-probs, asked the server's own way (activities/llm/backends) as generation and the on-policy
 * probe ask it; then the routes publishing will call exist (publish-routes.ts).
 */
export async function checkServer(server: ServerUnderCheck, env: WorkerEnv): Promise<Finding[]> {
  const { endpoint, baseUrl } = server;
  const field = server.fields[0]!;
  const subject = `${server.fields.join(', ')} ${baseUrl}`;
  if (!/^https?:\/\//.test(baseUrl)) return [fail(subject, 'is not an http:// or https:// URL', `set ${field}.baseUrl to the server's OpenAI base URL, e.g. http://gpu-a:8000/v1`)];
  let apiKey: string | undefined;
  if (endpoint.apiKeyEnv) {
    apiKey = env.secrets[endpoint.apiKeyEnv];
    if (!apiKey) return [fail(subject, `apiKeyEnv names ${endpoint.apiKeyEnv}, which this shell does not set`, `export ${endpoint.apiKeyEnv}=<key> here and in the llm and publish workers' environment`)];
  }
  const api = serverApi(baseUrl, apiKey, { timeoutMs: callTimeoutMs });
  const unreachable = (err: unknown) =>
    fail(subject, `does not answer: ${describe(err)}`, `start the ${endpoint.server} server at ${baseUrl}, or correct ${field}.baseUrl`);
  let served: string[];
  try {
    served = (await modelCards(api)).flatMap((card) => (card.id ? [card.id] : []));
  } catch (err) {
    return [unreachable(err)];
  }
  if (!served.includes(endpoint.model)) {
    return [
      fail(
        subject,
        `serves ${served.map((m) => JSON.stringify(m)).join(', ') || 'no model'}, not ${JSON.stringify(endpoint.model)}`,
        `set ${field}.model to the served name${served.length === 1 ? ` ("${served[0]}")` : ''}, or restart the server with --served-model-name ${endpoint.model} (the embedded server: --model-name)`,
      ),
    ];
  }
  let answer: string;
  try {
    answer = await oneToken(api, endpoint.server, endpoint.model);
  } catch (err) {
    if (err instanceof ModelConfigError) {
      return [fail(subject, `lists ${endpoint.model} but refuses a one-token chat with logprobs: ${describe(err)}`, `serve ${endpoint.model} with a chat template and OpenAI's logprobs field (vLLM, SGLang and the embedded server have both)`)];
    }
    return [unreachable(err)];
  }
  const routes = await checkPublishRoutes(server, api);
  return [pass(subject, `serves ${endpoint.model}; a one-token chat answered ${answer}`), ...(routes ? [routes] : [])];
}

async function oneToken(api: ServerApi, server: ServerUnderCheck['endpoint']['server'], model: string): Promise<string> {
  const dialect = backendFor(server);
  const body = await api.post('/v1/chat/completions', greedyWithLogprobs(dialect, model, model, [{ role: 'user', content: 'Reply with one word: ready?' }], 1));
  const side = servedSide(body, dialect);
  return `${JSON.stringify(side.tokens[0])} (logprob ${side.logprobs[0]!.toFixed(3)})`;
}
