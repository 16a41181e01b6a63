import { ModelConfigError } from '../../activities/llm/errors.js';
import type { ServerApi } from '../../activities/llm/server-api.js';
import type { Finding } from './finding.js';
import { describe, fail, pass } from './finding.js';
import type { ServerUnderCheck } from './plan.js';

/** FastAPI's answer for a route the app does not have (vLLM and SGLang both run on it). */
const noSuchRoute = /"detail"\s*:\s*"Not Found"/;

/**
 * The routes publishing will call exist, asked without changing what the server serves
 * (docs/trainer-contract.md, "Publishing"; the launch flags are the README's): vLLM's runtime
 * LoRA routes or its dev-mode routes, SGLang's `--enable-lora` or `/model_info`. The embedded
 * server has all of them.
 */
export async function checkPublishRoutes(server: ServerUnderCheck, api: ServerApi): Promise<Finding | undefined> {
  const { publishing, endpoint } = server;
  if (!publishing || endpoint.server === 'embedded') return undefined;
  const subject = `${server.fields.join(', ')} ${server.baseUrl} publishing`;
  const rank = publishing.lora?.rank;
  try {
    if (endpoint.server === 'vllm' && rank !== undefined) {
      // Unloading an adapter that was never loaded: vLLM's answer says the route exists.
      const absent = await api.post('/v1/unload_lora_adapter', { lora_name: 'code-a1-preflight-absent' }).then(
        () => false,
        (err: unknown) => err instanceof ModelConfigError && err.status === 404 && noSuchRoute.test(err.message),
      );
      if (absent) {
        return fail(subject, 'vLLM has no runtime LoRA routes (/v1/load_lora_adapter)', `restart vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora --max-lora-rank ${rank}`);
      }
      return pass(subject, 'vLLM answers its runtime LoRA routes');
    }
    if (endpoint.server === 'vllm') {
      await api.get('/is_paused');
      return pass(subject, 'vLLM answers its dev-mode routes (reload_weights through /collective_rpc)');
    }
    if (rank !== undefined) {
      const info = (await api.get('/server_info')) as { enable_lora?: unknown; max_lora_rank?: unknown };
      if (info.enable_lora !== true) return fail(subject, 'SGLang runs without --enable-lora', `restart SGLang with --enable-lora --max-lora-rank ${rank} --lora-target-modules all`);
      if (typeof info.max_lora_rank === 'number' && info.max_lora_rank < rank) {
        return fail(subject, `SGLang's --max-lora-rank is ${info.max_lora_rank}, trainer.lora.rank is ${rank}`, `restart SGLang with --max-lora-rank ${rank}`);
      }
      return pass(subject, 'SGLang serves LoRA adapters (--enable-lora)');
    }
    const info = (await api.get('/model_info')) as { model_path?: unknown };
    return pass(subject, `SGLang reports its weights in /model_info (${String(info.model_path)})`);
  } catch (err) {
    const missing = err instanceof ModelConfigError && err.status === 404;
    if (endpoint.server === 'vllm' && rank === undefined && missing) {
      return fail(subject, 'vLLM runs without its dev-mode routes (/collective_rpc, /pause)', 'restart vLLM with VLLM_SERVER_DEV_MODE=1 (full-weight publishing reloads through /collective_rpc; keep that server on a trusted network), or train LoRA adapters (trainer.lora)');
    }
    return fail(subject, `the publishing routes do not answer: ${describe(err)}`, `serve ${endpoint.model} with ${endpoint.server} as the README's "Pointing the same config at vLLM or SGLang" starts it`);
  }
}
