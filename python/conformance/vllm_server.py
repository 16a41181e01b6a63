"""A vLLM 0.34.0 OpenAI-compatible server without a GPU, for testing clients against vLLM's own code.

Run it with the environment built by infra/install-conformance.sh vllm:

  .venv-vllm/bin/python python/conformance/vllm_server.py --model DIR --served-model-name NAME \
      [--port 0] [--generation-config auto|vllm] [--enable-lora --max-lora-rank R] [--dev-mode]

Every `vllm serve` flag is accepted (this is vLLM's own argument parser); the defaults that differ
are --host 127.0.0.1, --port 0 (any free port) and --worker-cls vllm_worker.CpuWorker. `--dev-mode` sets
VLLM_SERVER_DEV_MODE=1; the runtime LoRA routes need VLLM_ALLOW_RUNTIME_LORA_UPDATING=True in the
environment, exactly as with vLLM. Once the server accepts connections it prints one line to
stdout, `ready http://127.0.0.1:<port>`; everything else (vLLM's and uvicorn's logs) goes to stderr.

vLLM's code, unchanged:
- argument parsing and validation, EngineArgs.create_engine_config (ModelConfig with the model's
  generation_config.json, LoRAConfig, LoadConfig, ...), on vLLM's CPU platform;
- the FastAPI app from `build_app` and its state from `init_app_state`: every router vLLM
  registers for these flags and environment (chat and completions, /v1/models, tokenize, the
  LoRA router only with VLLM_ALLOW_RUNTIME_LORA_UPDATING, the dev and RL routes such as /pause,
  /resume, /is_paused, /collective_rpc, /reset_prefix_cache, /update_weight_version only with
  VLLM_SERVER_DEV_MODE), its middleware, exception handlers and error shapes; served by vLLM's
  `serve_http` (uvicorn);
- OpenAIServingChat / OpenAIServingModels: request validation, model and adapter name
  resolution, `to_sampling_params` with ModelConfig.get_diff_sampling_param as defaults, response
  building (logprobs, `return_token_ids`, plain-text LoRA success bodies);
- AsyncLLM with its renderer (chat template, tokenizer), InputProcessor and OutputProcessor;
- AsyncMPClient's engine-facing methods and EngineCoreProc's utility error wrapping;
- UniProcExecutor and, in the worker, the model class built on the CPU (gloo, world size 1),
  DefaultModelLoader (file selection, safetensors iteration, `load_weights`), the LoRA manager
  (PEFTHelper.from_local_dir, validate_legal, LoRAModel.from_local_checkpoint) and the in-place
  `reload_weights` that `collective_rpc("reload_weights", kwargs={"weights_path": ...})` runs.

The stub (vllm_engine.py, vllm_worker.py):
- the EngineCore process: no scheduler and no forward pass; a request is answered at once with the
  on-policy probe's recorded tokens and log-probabilities when it is a greedy request with
  logprobs whose prompt renders like the `messages` of the `probe.json` in the served weights'
  (or the adapter's) directory, else with a fixed short answer at log-probability -0.5 per token.
  Pause, resume, prefix-cache reset and the weight version are recorded and kept as state;
  a paused engine rejects or holds new requests the way EngineCoreProc does;
- the transport between AsyncLLM and that engine (in-process calls on one thread, not ZMQ);
- the worker class itself (vLLM's CPUWorker needs the CPU build's kernels).

`GET /conformance/log` lists what the engine was asked (see vllm_log.py), and
`POST /conformance/reset` clears it.

Not covered: engine calls the stub does not implement answer 500 (`Call to <method> method failed:
... has no attribute ...`): /sleep, /wake_up, /weight_checker and the NCCL/IPC weight-transfer
routes. Prompt logprobs are not produced, and a streamed answer arrives as one chunk.
"""

import asyncio
import copy
import os
import sys

# Set before vLLM is imported, since it reads some of them once.
if {"--dev-mode", "--dev_mode"} & set(sys.argv):
    os.environ["VLLM_SERVER_DEV_MODE"] = "1"
# vLLM's CPU platform. On x86 it refuses to start without Triton, and vLLM's Triton probe finds no
# active driver on a machine without a GPU unless CUDA_VISIBLE_DEVICES is set and empty (which it
# reads as a worker whose driver is not up yet).
os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# The engine runs in this process (the CPU platform would otherwise force the multiprocess executor).
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
# stdout carries only the ready line, so that a caller may stop reading it.
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import uvicorn  # noqa: E402
import uvloop  # noqa: E402
from vllm import envs  # noqa: E402
from vllm.engine.arg_utils import AsyncEngineArgs  # noqa: E402
from vllm.entrypoints.common.cli_args import make_arg_parser, validate_parsed_serve_args  # noqa: E402
from vllm.entrypoints.launchers.api_server.app_state import init_app_state  # noqa: E402
from vllm.entrypoints.launchers.app import build_app  # noqa: E402
from vllm.entrypoints.launchers.launcher import serve_http, setup_server  # noqa: E402
from vllm.logger import configure_logging_from_args  # noqa: E402
from vllm.usage.usage_lib import UsageContext  # noqa: E402
from vllm.utils.argparse_utils import FlexibleArgumentParser  # noqa: E402

import vllm_log  # noqa: E402
from vllm_engine import ConformanceAsyncLLM  # noqa: E402


def parse_args():
    parser = make_arg_parser(FlexibleArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument(
        "--dev-mode", action="store_true", help="Sets VLLM_SERVER_DEV_MODE=1 (dev and RL routes)."
    )
    parser.set_defaults(host="127.0.0.1", port=0, worker_cls="vllm_worker.CpuWorker")
    args = parser.parse_args()
    configure_logging_from_args(args)
    validate_parsed_serve_args(args)
    return args


def stderr_log_config() -> dict:
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    return config


async def announce_when_ready(app, port: int) -> None:
    while not getattr(app.state, "server", None) or not app.state.server.started:
        await asyncio.sleep(0.05)
    print(f"ready http://127.0.0.1:{port}", flush=True)


async def serve(args) -> None:
    _, sock = setup_server(args, reuse_port=False)
    port = sock.getsockname()[1]
    args.port = port
    log = vllm_log.EventLog()

    vllm_config = AsyncEngineArgs.from_cli_args(args).create_engine_config(
        usage_context=UsageContext.OPENAI_API_SERVER
    )
    engine = ConformanceAsyncLLM(
        vllm_config,
        log,
        usage_context=UsageContext.OPENAI_API_SERVER,
        log_requests=args.enable_log_requests,
        log_stats=not args.disable_log_stats,
        aggregate_engine_logging=args.aggregate_engine_logging,
    )
    try:
        await engine.reset_mm_cache()
        supported_tasks = await engine.get_supported_tasks()
        app = build_app(args, supported_tasks, engine.model_config)
        await init_app_state(engine, app.state, args, supported_tasks)
        vllm_log.attach(app, log)

        ready = asyncio.create_task(announce_when_ready(app, port))
        shutdown = await serve_http(
            app,
            sock=sock,
            host=args.host,
            port=port,
            log_level=args.uvicorn_log_level,
            access_log=not args.disable_uvicorn_access_log,
            timeout_keep_alive=envs.VLLM_HTTP_TIMEOUT_KEEP_ALIVE,
            log_config=stderr_log_config(),
        )
        ready.cancel()
        await shutdown
    finally:
        engine.shutdown()
        sock.close()


if __name__ == "__main__":
    uvloop.run(serve(parse_args()))
