"""The stub side of the vLLM conformance server: a stand-in for the EngineCore process.

vLLM's API server talks to its engine through `AsyncLLM` (the EngineClient the routes call), which
talks to the EngineCore process through an `EngineCoreClient`. `AsyncLLM` here is vLLM's own; so
is its InputProcessor (request validation, the SamplingParams sent to the engine) and its
OutputProcessor (detokenization, logprobs, the RequestOutput the routes turn into responses).
Only what lies beyond the client is replaced, by `ConformanceEngineCore`:
- requests are answered at once instead of being scheduled and run: with the on-policy probe's
  tokens when the prompt is the probe's (see `probe_answer`), else with a fixed short answer;
- utility calls (add_lora, collective_rpc, pause, ...) run as EngineCore runs them, mostly by
  handing them to vLLM's UniProcExecutor, whose worker (vllm_worker.py) holds the model
  on the CPU. Their errors come back as EngineCore's do: `Call to <method> method failed: <error>`.
"""

import asyncio
import json
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
from vllm.config import VllmConfig
from vllm.outputs import RequestError
from vllm.renderers import BaseRenderer
from vllm.renderers.params import ChatParams
from vllm.sampling_params import SamplingParams
from vllm.v1.engine import EngineCoreOutput, EngineCoreOutputs, EngineCoreRequest, FinishReason, UtilityOutput
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.core import EngineCoreProc
from vllm.v1.engine.core_client import AsyncMPClient, EngineCoreClient, _process_utility_output
from vllm.v1.executor.uniproc_executor import UniProcExecutor
from vllm.v1.outputs import LogprobsLists

from vllm_log import EventLog, plain

# The answer to every request that is not the probe's: short, and shaped like the code answers the
# project parses.
FIXED_ANSWER = "```python\ndef f(x):\n    return x\n```"
FIXED_LOGPROB = -0.5
PROBE_FILE = "probe.json"


class ConformanceEngineCore:
    """Runs what vLLM's EngineCore would, minus scheduling and the forward pass."""

    def __init__(self, vllm_config: VllmConfig, log: EventLog, renderer: BaseRenderer) -> None:
        self.vllm_config = vllm_config
        self.log = log
        self.renderer = renderer
        self.model_executor = UniProcExecutor(vllm_config)
        # What generation answers from: the served checkpoint only changes when a reload succeeds.
        self.weights_dir = vllm_config.model_config.model
        self.weight_version = "default"
        self.paused = False
        self.reject_new_requests = False
        self.held: list[EngineCoreRequest] = []
        self.send: Callable[[EngineCoreOutputs], None] = lambda outputs: None
        self._probe_prompts: dict[tuple[str, float], list[int] | None] = {}
        load = self.model_executor.driver_worker.worker.last_weight_load
        self.log.record("load_model", path=load.path, files=load.files)

    # Requests.

    def add_request(self, request: EngineCoreRequest) -> None:
        if self.reject_new_requests:
            self.log.annotate(request.external_req_id, answer="rejected: paused")
            error = RequestError(
                code="engine_paused",
                message="Generation is paused. Please retry after it resumes.",
                retryable=True,
            )
            self._finish(request.request_id, FinishReason.ERROR, error)
            return
        if self.paused:
            self.log.annotate(request.external_req_id, answer="held: paused")
            self.held.append(request)
            return
        self._answer(request)

    def abort_requests(self, request_ids: list[str]) -> None:
        self.held = [r for r in self.held if r.request_id not in request_ids]

    def _finish(self, request_id: str, reason: FinishReason, error: RequestError | None = None):
        self._send(EngineCoreOutput(request_id, [], finish_reason=reason, error=error))

    def _send(self, output: EngineCoreOutput) -> None:
        self.send(
            EngineCoreOutputs(
                outputs=[output],
                finished_requests={output.request_id},
                weight_version=self.weight_version,
            )
        )

    def _answer(self, request: EngineCoreRequest) -> None:
        params = request.sampling_params
        assert params is not None
        answer, source = self.probe_answer(request)
        if answer is None:
            ids = self.renderer.tokenizer.encode(FIXED_ANSWER, add_special_tokens=False)
            answer, source = (ids, [FIXED_LOGPROB] * len(ids)), "fixed"
        token_ids, logprobs = answer
        limit = params.max_tokens if params.max_tokens is not None else len(token_ids)
        token_ids, logprobs = token_ids[:limit], logprobs[:limit]
        self.log.annotate(request.external_req_id, answer=source)
        output = EngineCoreOutput(
            request.request_id,
            list(token_ids),
            new_logprobs=self._logprobs(token_ids, logprobs, params),
            finish_reason=FinishReason.LENGTH if len(token_ids) >= limit else FinishReason.STOP,
        )
        self._send(output)

    def _logprobs(self, token_ids, logprobs, params: SamplingParams) -> LogprobsLists | None:
        """Logprobs as the sampler reports them: the sampled token, then the top k, which it heads."""
        if params.logprobs is None:
            return None
        k = params.logprobs if params.logprobs >= 0 else 1
        vocab = self.vllm_config.model_config.get_vocab_size()
        ids = np.array(
            [[t, *((t + j) % vocab for j in range(k))] for t in token_ids], dtype=np.int64
        ).reshape(len(token_ids), k + 1)
        values = np.array([[lp, *(lp - j for j in range(k))] for lp in logprobs], dtype=np.float32).reshape(
            len(token_ids), k + 1
        )
        return LogprobsLists(ids, values, np.ones(len(token_ids), dtype=np.int64))

    def probe_answer(self, request: EngineCoreRequest):
        """The probe's recorded answer when this is a greedy request with logprobs for the probe's
        prompt, looked up in the adapter's directory or else the served weights' directory."""
        params = request.sampling_params
        if params is None or params.temperature != 0 or params.logprobs is None:
            return None, None
        lora = request.lora_request
        directory = lora.lora_path if lora is not None else self.weights_dir
        path = os.path.join(directory, PROBE_FILE)
        try:
            key = (path, os.path.getmtime(path))
        except OSError:
            return None, None
        if key not in self._probe_prompts:
            self._probe_prompts[key] = self._probe_prompt(path)
        prompt = self._probe_prompts[key]
        if prompt is None or prompt != [int(t) for t in request.prompt_token_ids]:
            return None, None
        with open(path) as f:
            current = json.load(f)["current"]
        return (current["tokenIds"], current["logprobs"]), f"probe:{path}"

    def _probe_prompt(self, path: str) -> list[int] | None:
        """The probe's messages rendered as a chat request renders them (vLLM's renderer)."""
        try:
            with open(path) as f:
                messages = json.load(f)["messages"]
            _, (prompt,) = self.renderer.render_chat(
                [messages], ChatParams(chat_template_kwargs={"add_generation_prompt": True})
            )
            return [int(t) for t in prompt["prompt_token_ids"]]
        except Exception:
            return None

    # Utility calls, by the names EngineCore gives them.

    def get_supported_tasks(self):
        return self.model_executor.supported_tasks

    def add_lora(self, lora_request) -> bool:
        event = self.log.record(
            "add_lora", name=lora_request.lora_name, path=lora_request.lora_path, error=None
        )
        try:
            return self.model_executor.add_lora(lora_request)
        except Exception as e:
            self.log.update(event, error=str(e))
            raise

    def remove_lora(self, lora_id: int) -> bool:
        self.log.record("remove_lora", lora_id=lora_id)
        return self.model_executor.remove_lora(lora_id)

    def list_loras(self) -> set[int]:
        return self.model_executor.list_loras()

    def pin_lora(self, lora_id: int) -> bool:
        return self.model_executor.pin_lora(lora_id)

    def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
        worker = self.model_executor.driver_worker.worker
        worker.last_weight_load = None
        event = self.log.record(
            "collective_rpc", method=plain(method), args=plain(args), kwargs=plain(kwargs), error=None
        )
        try:
            result = self.model_executor.collective_rpc(method, timeout, args, kwargs)
        except Exception as e:
            self.log.update(event, error=str(e))
            raise
        finally:
            load = worker.last_weight_load
            if load is not None:
                self.log.update(
                    event,
                    files=load.files,
                    tensors=load.tensors,
                    unexpected=load.unexpected,
                    missing=load.missing,
                )
        if method == "reload_weights" and worker.last_weight_load is not None:
            self.weights_dir = worker.last_weight_load.path
        return result

    def reset_prefix_cache(self, reset_running_requests: bool = False, reset_connector: bool = False) -> bool:
        self.log.record(
            "reset_prefix_cache",
            reset_running_requests=reset_running_requests,
            reset_connector=reset_connector,
        )
        return True

    def reset_mm_cache(self) -> None:
        pass

    def reset_encoder_cache(self) -> None:
        self.log.record("reset_encoder_cache")

    def pause_generation(self, mode: str = "abort", clear_cache: bool = True) -> None:
        if mode not in ("abort", "wait", "keep"):
            raise ValueError(f"Invalid pause mode: {mode}")
        self.log.record("pause", mode=mode, clear_cache=clear_cache)
        self.paused = True
        self.reject_new_requests = mode != "keep"

    def resume_scheduler(self) -> None:
        self.log.record("resume")
        self.paused = False
        self.reject_new_requests = False
        held, self.held = self.held, []
        for request in held:
            self._answer(request)

    def is_scheduler_paused(self) -> bool:
        return self.paused

    def set_weight_version(self, weight_version: str) -> None:
        self.log.record("update_weight_version", weight_version=weight_version)
        self.weight_version = weight_version

    def get_weight_version(self) -> str:
        return self.weight_version

    def is_sleeping(self) -> bool:
        return False

    def shutdown(self) -> None:
        self.model_executor.shutdown()


class ConformanceEngineCoreClient(AsyncMPClient):
    """vLLM's AsyncMPClient with its ZMQ transport to the engine process replaced by calls into
    `ConformanceEngineCore`; its `*_async` methods, which choose the utility names, are vLLM's.

    Calls run one at a time on one thread, as EngineCoreProc serves its input queue: a request sent
    during a weight reload is answered after it.
    """

    def __init__(self, core: ConformanceEngineCore) -> None:
        self.core = core
        self.vllm_config = core.vllm_config
        self.client_index = 0
        self.client_count = 1
        self.engine_ranks_managed = [0]
        self.core_engine = b"\x00\x00"
        self.core_engines = [self.core_engine]
        self.utility_results: dict[int, asyncio.Future] = {}
        self.resources = SimpleNamespace(engine_dead=False, output_queue_task=None)
        self._engine_status: dict[int, dict] = {}
        self._kv_event_sources = {}
        self.outputs_queue = asyncio.Queue[EngineCoreOutputs]()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-core")
        self._loop: asyncio.AbstractEventLoop | None = None
        core.send = self._send_output

    def _send_output(self, outputs: EngineCoreOutputs) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.outputs_queue.put_nowait, outputs)

    async def _run(self, fn: Callable, *args) -> Any:
        self._loop = asyncio.get_running_loop()
        return await self._loop.run_in_executor(self._thread, fn, *args)

    async def get_output_async(self) -> EngineCoreOutputs:
        return await self.outputs_queue.get()

    async def add_request_async(self, request: EngineCoreRequest) -> None:
        await self._run(self.core.add_request, request)

    async def abort_requests_async(self, request_ids: list[str]) -> None:
        if request_ids:
            await self._run(self.core.abort_requests, request_ids)

    async def _call_utility_async(self, method: str, *args, engine=None) -> Any:
        call_id = uuid.uuid1().int >> 64
        future = asyncio.get_running_loop().create_future()
        self.utility_results[call_id] = future
        output = UtilityOutput(call_id)

        def invoke() -> None:
            EngineCoreProc._invoke_utility_method(
                method, lambda: getattr(self.core, method)(*args), output, lambda out: None
            )

        await self._run(invoke)
        _process_utility_output(output, self.utility_results)
        return await future

    def dp_engines_running(self) -> bool:
        return False

    def shutdown(self, timeout: float | None = None) -> None:
        self.core.shutdown()
        self._thread.shutdown(wait=False, cancel_futures=True)


class ConformanceAsyncLLM(AsyncLLM):
    """vLLM's AsyncLLM on the conformance engine; `generate` also logs what the routes asked for."""

    def __init__(self, vllm_config: VllmConfig, log: EventLog, **kwargs) -> None:
        self.log = log

        def make_client(*, vllm_config, renderer, **_):
            return ConformanceEngineCoreClient(ConformanceEngineCore(vllm_config, log, renderer))

        # AsyncLLM.__init__ builds its engine client with this factory and offers no other seam;
        # it is swapped only while the constructor runs.
        original = EngineCoreClient.__dict__["make_async_mp_client"]
        EngineCoreClient.make_async_mp_client = staticmethod(make_client)
        try:
            super().__init__(vllm_config=vllm_config, executor_class=UniProcExecutor, **kwargs)
        finally:
            EngineCoreClient.make_async_mp_client = original

    async def generate(self, prompt, sampling_params, request_id, *, lora_request=None, **kwargs):
        self.log.record_request(
            request_id=request_id,
            sampling_params=plain(sampling_params),
            lora=lora_request.lora_name if lora_request is not None else None,
        )
        async for output in super().generate(
            prompt, sampling_params, request_id, lora_request=lora_request, **kwargs
        ):
            yield output
