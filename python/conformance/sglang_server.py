"""
A conformance server for SGLang (the release pinned in python/requirements-sglang.txt): SGLang's
own HTTP server running without a GPU, so that the project's publishing and generation client is
tested against SGLang's real request validation, adapter resolution, sampling parameters, routes
and weight-file selection rather than against an imitation of them.

    .venv-sglang/bin/python python/conformance/sglang_server.py --model DIR --served-model-name NAME \
        [--port 0] [--sampling-defaults model|openai] [--enable-lora --max-lora-rank R] [SGLANG FLAGS...]

Prints `ready http://127.0.0.1:<port>` on stdout once SGLang's own warm-up request has been
answered; everything else goes to stderr. Flags it does not know go to SGLang's parser unchanged:
SGLang refuses `--enable-lora` without `--lora-paths` unless `--lora-target-modules` is given too.

SGLang's code, as the wheel ships it:
- the launch: prepare_server_args (SGLang's CLI parser and ServerArgs), Engine._launch_subprocesses
  (config resolution and checks, PortArgs, publication of the runtime config),
  http_server._setup_and_run_http_server (global state, lifespan, warm-up, uvicorn);
- the FastAPI app of sglang.srt.entrypoints.http_server with all its routes: /model_info,
  /get_model_info, /v1/models, /v1/chat/completions, /v1/completions, /generate,
  /update_weights_from_disk, /update_weight_version, /load_lora_adapter, /unload_lora_adapter,
  /pause_generation, /continue_generation, /flush_cache, /health, ...;
- the TokenizerManager (request normalization, tokenization, SamplingParams construction and
  checks, LoRA registry, adapter resolution and implicit reload, the weight-update lock,
  model_path/served_model_name/weight_version bookkeeping, output and log-prob handling), the
  TemplateManager, and OpenAIServingChat (ChatCompletionRequest validation, chat template,
  `model: "<served>:<adapter>"` and `lora_path` resolution, the generation_config defaults of
  ModelConfig.get_default_sampling_params, response building);
- the DetokenizerManager, run in a thread instead of a process;
- behind the stub scheduler: ModelConfig, get_tokenizer, the weight loader (get_model_loader,
  DefaultModelLoader._prepare_weights and _get_weights_iterator), the model class and its
  load_weights on the meta device, LoRAConfig, LoRAAdapter.initialize_weights,
  LoRAManager.validate_new_adapter and LoRAMemoryPool.can_support, finish reasons and
  weight-version spans.

Ours, besides the stub scheduler (sglang_stub_scheduler.py: no tokens are generated; a greedy
request with log-probs whose messages are those of the served directory's probe.json gets that
probe's tokens, anything else a fixed short answer):
- ConformanceEngine replaces the two launch steps that spawn processes (_launch_scheduler_processes,
  _launch_detokenizer_subprocesses); RecordingTokenizerManager adds only the notes of what it sends
  to the scheduler (_dispatch_to_scheduler);
- the model is built on gloo process groups without SGLang's CPU thread pinning, with the rotary
  embedding built as for SGLang's CPU engine, and loaded without the post-load repacking (see
  sglang_meta_model.py);
- HF_HUB_OFFLINE=1 unless set: a model path that is no directory fails at once instead of after
  network timeouts;
- GET /conformance/log (the recorded events, see sglang_log.py), POST /conformance/reset, and GET
  /conformance/state (what the stub scheduler serves).
"""
import argparse
import functools
import logging
import os
import socket
import sys
import threading
import time

STARTED = time.perf_counter()
# A model path that is not a directory is looked up on the Hugging Face hub; these machines have no
# network, and offline mode makes that fail at once instead of after DNS and HTTP timeouts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The ready line is the only thing on stdout: uvicorn's access log and SGLang's prints go to stderr.
_ready_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

from fastapi.responses import ORJSONResponse  # noqa: E402

from sglang.srt.configs.model_config import ModelConfig  # noqa: E402
from sglang.srt.entrypoints import http_server  # noqa: E402
from sglang.srt.entrypoints.engine import Engine, SchedulerInitResult, init_tokenizer_manager  # noqa: E402
from sglang.srt.managers.detokenizer_manager import DetokenizerManager  # noqa: E402
from sglang.srt.managers.tokenizer_manager import TokenizerManager  # noqa: E402
from sglang.srt.runtime_context import get_model, get_serving  # noqa: E402
from sglang.srt.server_args import prepare_server_args  # noqa: E402
from sglang.srt.utils.hf_transformers_utils import get_tokenizer  # noqa: E402

from sglang_log import ConformanceLog, RecordingMiddleware  # noqa: E402
from sglang_stub_scheduler import StubScheduler  # noqa: E402

logger = logging.getLogger("conformance")
LOG = ConformanceLog()
_schedulers: list[StubScheduler] = []


class RecordingTokenizerManager(TokenizerManager):
    """SGLang's TokenizerManager; every message it sends to the scheduler is noted with the HTTP
    request it serves, and a generate request's sampling params as SGLang's OpenAI layer built them."""

    def _note(self, obj) -> None:
        event = LOG.note_dispatch(obj)
        if event is None:
            return
        for item in getattr(obj, "batch", None) or [obj]:
            state = self.rid_to_state.get(getattr(item, "rid", None))
            if state is None or not hasattr(item, "sampling_params"):
                continue
            LOG.add_to_request(
                event,
                item.rid,
                {
                    "sampling_params": dict(state.obj.sampling_params or {}),
                    "lora_path_field": state.obj.lora_path,
                    "lora_id": item.lora_id,
                },
            )

    def _dispatch_to_scheduler(self, obj) -> None:
        self._note(obj)
        super()._dispatch_to_scheduler(obj)

    async def _async_dispatch_to_scheduler(self, obj) -> None:
        self._note(obj)
        await super()._async_dispatch_to_scheduler(obj)


class ConformanceEngine(Engine):
    """Engine._launch_subprocesses with the scheduler replaced by the stub and the detokenizer
    run in a thread; everything else in the launch is SGLang's."""

    @classmethod
    def _launch_scheduler_processes(cls, server_args, port_args, run_scheduler_process_func, **kwargs):
        tokenizer = get_tokenizer(
            get_serving().tokenizer_path,
            tokenizer_mode=get_serving().tokenizer_mode,
            trust_remote_code=get_model().trust_remote_code,
            revision=get_model().revision,
            tokenizer_backend=get_serving().tokenizer_backend,
        )
        scheduler = StubScheduler(server_args, port_args, ModelConfig.from_server_args(server_args), tokenizer, LOG)
        scheduler.start()
        _schedulers.append(scheduler)
        return SchedulerInitResult(scheduler_infos=[scheduler.init_info()]), []

    @classmethod
    def _launch_detokenizer_subprocesses(cls, server_args, port_args, run_detokenizer_process_func):
        manager = DetokenizerManager(server_args, port_args)
        threading.Thread(target=manager.event_loop, name="detokenizer", daemon=True).start()
        return [], []


def _add_conformance_routes(app) -> None:
    app.add_middleware(RecordingMiddleware, log=LOG)

    @app.get("/conformance/log")
    async def conformance_log():
        return ORJSONResponse(LOG.events())

    @app.post("/conformance/reset")
    async def conformance_reset():
        LOG.reset()
        return ORJSONResponse({"success": True})

    @app.get("/conformance/state")
    async def conformance_state():
        s = _schedulers[0]
        return ORJSONResponse(
            {
                "model_path": s.model_path,
                "weight_version": s.weight_version,
                "adapters": {ref.lora_name: ref.lora_path for ref in s.lora_refs.values()},
                "paused": s.paused,
                "meta_model": type(s.meta_model.model).__name__ if s.meta_model.model is not None else None,
                "meta_model_error": s.meta_model.build_error,
            }
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (config.json, tokenizer, weights)")
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--sampling-defaults", choices=["model", "openai"], default="model")
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--max-lora-rank", type=int)
    return parser.parse_known_args(argv)


def sglang_argv(args: argparse.Namespace, extra: list[str]) -> list[str]:
    argv = [
        "--model-path", args.model,
        "--served-model-name", args.served_model_name,
        "--host", "127.0.0.1",
        "--port", str(args.port or _free_port()),
        "--sampling-defaults", args.sampling_defaults,
        "--device", "cpu",
    ]
    if args.enable_lora:
        argv.append("--enable-lora")
    if args.max_lora_rank is not None:
        argv += ["--max-lora-rank", str(args.max_lora_rank)]
    return argv + extra


def main(argv: list[str]) -> None:
    args, extra = parse_args(argv)
    server_args = prepare_server_args(sglang_argv(args, extra))
    _add_conformance_routes(http_server.app)

    (
        tokenizer_manager,
        template_manager,
        port_args,
        scheduler_init_result,
        subprocess_watchdog,
        _,
    ) = ConformanceEngine._launch_subprocesses(
        server_args=server_args,
        init_tokenizer_manager_func=functools.partial(
            init_tokenizer_manager, TokenizerManagerClass=RecordingTokenizerManager
        ),
        run_scheduler_process_func=None,
        run_detokenizer_process_func=None,
    )

    def ready() -> None:
        # The warm-up request is SGLang's, not the client's.
        LOG.reset()
        logger.info("conformance server ready after %.1f s", time.perf_counter() - STARTED)
        print(f"ready http://127.0.0.1:{get_serving().port}", file=_ready_out, flush=True)

    http_server._setup_and_run_http_server(
        server_args,
        tokenizer_manager,
        template_manager,
        port_args,
        scheduler_init_result.scheduler_infos,
        subprocess_watchdog,
        launch_callback=ready,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
