"""
The stand-in for SGLang's scheduler process: the one part of an SGLang server that needs the GPU
(it owns the model runner, the KV cache and the sampler). It runs as a thread of the conformance
server and speaks SGLang's own IPC to SGLang's own tokenizer manager and detokenizer: it pulls the
msgpack messages the tokenizer manager sends to the scheduler and answers in the scheduler's
formats (BatchTokenIDOutput to the detokenizer, control outputs to the tokenizer manager).

What it computes with SGLang's code: weight-file selection and tensor iteration on a disk reload
(DefaultModelLoader from get_model_loader, with SGLang's filters), the name mapping of the served
architecture's `load_weights` (sglang_meta_model.py), adapter configs and validation on a LoRA load
(LoRAConfig, LoRAManager.validate_new_adapter, LoRAMemoryPool.can_support), finish reasons,
incremental-detokenization offsets and weight-version spans. What it makes up: the generated
tokens and their log-probabilities (a checkpoint's probe.json answer, or a fixed short answer).
"""
import copy
import json
import logging
import os
import signal
import threading
import time
import types
from array import array
from typing import Any, Optional

import zmq

from sglang.srt.configs.load_config import LoadConfig
from sglang.srt.lora.lora_config import LoRAConfig
from sglang.srt.lora.lora_manager import LoRAManager
from sglang.srt.lora.mem_pool import LoRAMemoryPool
from sglang.srt.lora.utils import get_normalized_target_modules
from sglang.srt.managers.io_struct import (
    AbortReq,
    BatchTokenIDOutput,
    BatchTokenizedGenerateReqInput,
    ContinueGenerationReqInput,
    FlushCacheReqInput,
    FlushCacheReqOutput,
    FreezeGCReq,
    GetInternalStateReq,
    GetInternalStateReqOutput,
    LoadLoRAAdapterReqInput,
    LoRAUpdateOutput,
    PauseGenerationReqInput,
    ShutdownReq,
    TokenizedGenerateReqInput,
    UnloadLoRAAdapterReqInput,
    UpdateWeightFromDiskReqInput,
    UpdateWeightFromDiskReqOutput,
    UpdateWeightVersionReqInput,
    UpdateWeightVersionReqOutput,
    sock_recv,
    sock_send,
)
from sglang.srt.managers.schedule_batch import (
    FINISH_ABORT,
    FINISH_LENGTH,
    FINISH_MATCHED_STR,
    FINISH_MATCHED_TOKEN,
    INIT_INCREMENTAL_DETOKENIZATION_OFFSET,
)
from sglang.srt.model_loader.loader import DefaultModelLoader, get_model_loader
from sglang.srt.runtime_context import get_lora, get_model, get_serving
from sglang.srt.utils.network import get_zmq_socket
from sglang.srt.utils.msgspec_utils import msgspec_to_builtins
from sglang.srt.utils.weight_versions import compute_weight_version_spans

from sglang_log import ConformanceLog
from sglang_meta_model import MetaModel

logger = logging.getLogger("conformance.scheduler")

# Any other request gets this answer, tokenized with the served tokenizer and followed by the end
# token: a short code block, because the client extracts code from the model's answers.
FIXED_ANSWER = "```python\ndef f(x):\n    return x\n```"
FIXED_LOGPROB = -0.5
PROBE_FILE = "probe.json"


class SchedulerDied(Exception):
    """An exception SGLang's scheduler would not catch: run_scheduler_process logs it and sends
    SIGQUIT to the server process, whose handler kills the whole process tree."""


# SamplingParams fields that normalize() derives from the others.
_INTERNAL_SAMPLING_FIELDS = ("stop_strs", "stop_regex_strs", "stop_str_max_len", "stop_regex_max_len", "is_normalized")


def _struct_dict(obj: Any) -> dict:
    return msgspec_to_builtins({f: getattr(obj, f) for f in obj.__struct_fields__})


class StubScheduler:
    def __init__(self, server_args, port_args, model_config, tokenizer, log: ConformanceLog) -> None:
        self.server_args = server_args
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.log = log
        # The scheduler process's own view, as its published config and ModelRunner hold it.
        self.model_path = get_model().model_path
        self.load_format = get_model().load_format
        self.weight_version = get_serving().weight_version
        self.meta_model = MetaModel(model_config, server_args)
        self.lora_refs: dict[str, Any] = {}
        self.lora_configs: dict[str, LoRAConfig] = {}
        self.num_pinned_loras = 0
        self.lora_pool: Optional[types.SimpleNamespace] = None
        self.paused = False
        if get_lora().enable_lora:
            self._init_lora()

        context = zmq.Context(2)
        self.recv_from_tokenizer = get_zmq_socket(context, zmq.PULL, port_args.scheduler_input_ipc_name, False)
        self.send_to_tokenizer = get_zmq_socket(context, zmq.PUSH, port_args.tokenizer_ipc_name, False)
        self.send_to_detokenizer = get_zmq_socket(context, zmq.PUSH, port_args.detokenizer_ipc_name, False)

        eos = model_config.hf_eos_token_id or set()
        self.eos_ids = set(eos) | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
        self.end_token = tokenizer.eos_token_id if tokenizer.eos_token_id in self.eos_ids else min(self.eos_ids)
        self.handlers = {
            TokenizedGenerateReqInput: self.generate,
            BatchTokenizedGenerateReqInput: self.generate_batch,
            UpdateWeightFromDiskReqInput: self.update_weights_from_disk,
            UpdateWeightVersionReqInput: self.update_weight_version,
            LoadLoRAAdapterReqInput: self.load_lora_adapter,
            UnloadLoRAAdapterReqInput: self.unload_lora_adapter,
            FlushCacheReqInput: self.flush_cache,
            PauseGenerationReqInput: self.pause_generation,
            ContinueGenerationReqInput: self.continue_generation,
            GetInternalStateReq: self.get_internal_state,
            # Every request finishes the moment it arrives: nothing to abort, no GC to freeze; the
            # server process ends this thread with it.
            AbortReq: lambda req, event: None,
            FreezeGCReq: lambda req, event: None,
            ShutdownReq: lambda req, event: None,
        }
        self.startup_time = {"load_weight": 0.0, "kv_cache_allocation": 0.0, "scheduler_e2e": 0.0, "cuda_graph": {}}

    def init_info(self) -> dict:
        # max_req_input_len as TpModelWorker computes it, with a KV pool as large as the context.
        max_req_len = self.model_config.context_len - 1
        return {
            "status": "ready",
            "max_total_num_tokens": self.model_config.context_len,
            "max_req_input_len": max_req_len - 5,
            "startup_time": self.startup_time,
        }

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.event_loop, name="stub-scheduler", daemon=True)
        thread.start()
        return thread

    def event_loop(self) -> None:
        while True:
            req = sock_recv(self.recv_from_tokenizer)
            event = self.log.claim(req)
            handler = self.handlers.get(type(req))
            if handler is None:
                logger.warning("the stub scheduler ignores %s", type(req).__name__)
                continue
            try:
                output = handler(req, event)
            except SchedulerDied:
                logger.exception("Scheduler hit an exception (as SGLang's scheduler process would)")
                # The log dies with the process; its last event goes to stderr.
                logger.error("conformance event: %s", json.dumps(event, default=str))
                os.kill(os.getpid(), signal.SIGQUIT)
                return
            except Exception as e:
                # A fault of the stub, not of SGLang: answer generate requests with an abort so the
                # client sees an error instead of waiting forever.
                logger.exception("the stub scheduler failed on %s", type(req).__name__)
                self.log.update(event, {"stub_error": repr(e)})
                abort = FINISH_ABORT(message=f"conformance stub: {e!r}")
                for item in getattr(req, "batch", None) or [req]:
                    if isinstance(item, TokenizedGenerateReqInput):
                        sock_send(self.send_to_detokenizer, self._token_output(item, [], [], abort))
                continue
            if output is not None:
                sock_send(self.send_to_tokenizer, output)

    # ---- generation -------------------------------------------------------------------------

    def generate_batch(self, batch: BatchTokenizedGenerateReqInput, event: Optional[dict]) -> None:
        for req in batch.batch:
            self.generate(req, event)

    def generate(self, req: TokenizedGenerateReqInput, event: Optional[dict]) -> None:
        sp = req.sampling_params
        adapter = self.lora_refs.get(req.lora_id) if req.lora_id else None
        served_dir = adapter.lora_path if adapter is not None else self.model_path
        # SamplingParams turns temperature 0 into top_k 1: that is how the scheduler knows greedy.
        greedy = sp.top_k == 1
        probe = self._probe(served_dir, event) if greedy and req.return_logprob else None
        if probe is not None:
            ids, logprobs, source = list(probe["tokenIds"]), list(probe["logprobs"]), f"{served_dir}/{PROBE_FILE}"
        else:
            ids = self.tokenizer.encode(FIXED_ANSWER, add_special_tokens=False) + [self.end_token]
            logprobs, source = [FIXED_LOGPROB] * len(ids), "fixed answer"
        ids, logprobs, finish = self._finish(ids, logprobs, sp, len(req.input_ids))

        self.log.add_to_request(
            event,
            req.rid,
            {
                "scheduler_sampling_params": {
                    k: v for k, v in _struct_dict(sp).items() if k not in _INTERNAL_SAMPLING_FIELDS
                },
                "lora": adapter.lora_name if adapter is not None else None,
                "lora_path": adapter.lora_path if adapter is not None else None,
                "served_path": served_dir,
                "answer": source,
                "prompt_tokens": len(req.input_ids),
                "completion_tokens": len(ids),
                "finish_reason": finish.to_json(),
            },
        )
        sock_send(self.send_to_detokenizer, self._token_output(req, ids, logprobs, finish))

    def _probe(self, served_dir: str, event: Optional[dict]) -> Optional[dict]:
        try:
            with open(os.path.join(served_dir, PROBE_FILE)) as f:
                probe = json.load(f)
        except (OSError, ValueError):
            return None
        body = (event or {}).get("body")
        messages = body.get("messages") if isinstance(body, dict) else None
        wanted = [{"role": m.get("role"), "content": m.get("content")} for m in messages or [] if isinstance(m, dict)]
        if wanted != probe.get("messages"):
            return None
        return probe.get("current")

    def _finish(self, ids: list, logprobs: list, sp, prompt_len: int):
        """Cuts the made-up answer where the scheduler's stop checks would (Req.check_finished order:
        length, stop tokens, stop strings), and names the finish reason as SGLang does."""
        max_new = sp.max_new_tokens if sp.max_new_tokens is not None else self.model_config.context_len - prompt_len
        stop_ids = set(sp.stop_token_ids or ()) | (set() if sp.ignore_eos else self.eos_ids)
        stop_strs = [sp.stop_strs] if isinstance(sp.stop_strs, str) else list(sp.stop_strs or ())
        if max_new <= 0:
            # The prefill-only request SGLang sends ahead of an n > 1 request to cache the prompt.
            return [], [], FINISH_LENGTH(length=0)
        for n in range(1, len(ids) + 1):
            if n >= max_new:
                return ids[:n], logprobs[:n], FINISH_LENGTH(length=n)
            if ids[n - 1] in stop_ids:
                return ids[:n], logprobs[:n], FINISH_MATCHED_TOKEN(matched=ids[n - 1])
            if stop_strs:
                text = self.tokenizer.decode(ids[:n])
                for s in stop_strs:
                    if s and s in text:
                        return ids[:n], logprobs[:n], FINISH_MATCHED_STR(matched=s)
        return ids, logprobs, FINISH_LENGTH(length=len(ids))

    def _token_output(self, req, ids: list, logprobs: list, finish) -> BatchTokenIDOutput:
        prompt = list(req.input_ids)
        read_offset = len(prompt)
        surr_offset = max(read_offset - INIT_INCREMENTAL_DETOKENIZATION_OFFSET, 0)
        sp = req.sampling_params
        k = req.top_logprobs_num or 0
        # Made-up alternatives for top_logprobs: the chosen token first, then its neighbours in the vocabulary.
        top_val = [[lp] + [lp - 1.0 - j for j in range(k - 1)] for lp in logprobs]
        top_idx = [[t] + [(t + 1 + j) % len(self.tokenizer) for j in range(k - 1)] for t in ids]
        wanted_ids = list(req.token_ids_logprob or [])
        ids_val = [[(lp if w == t else -20.0) for w in wanted_ids] for t, lp in zip(ids, logprobs)]
        ids_idx = [wanted_ids for _ in ids]
        spans = compute_weight_version_spans([], current_version=self.weight_version, num_output_tokens=len(ids))
        logprob_fields = (
            dict(
                input_token_logprobs_val=[[]],
                input_token_logprobs_idx=[[]],
                output_token_logprobs_val=[logprobs],
                output_token_logprobs_idx=[ids],
                input_top_logprobs_val=[[]],
                input_top_logprobs_idx=[[]],
                output_top_logprobs_val=[top_val if k else []],
                output_top_logprobs_idx=[top_idx if k else []],
                input_token_ids_logprobs_val=[[]],
                input_token_ids_logprobs_idx=[[]],
                output_token_ids_logprobs_val=[ids_val],
                output_token_ids_logprobs_idx=[ids_idx],
            )
            if req.return_logprob
            else dict(
                input_token_logprobs_val=None,
                input_token_logprobs_idx=None,
                output_token_logprobs_val=None,
                output_token_logprobs_idx=None,
                input_top_logprobs_val=None,
                input_top_logprobs_idx=None,
                output_top_logprobs_val=None,
                output_top_logprobs_idx=None,
                input_token_ids_logprobs_val=None,
                input_token_ids_logprobs_idx=None,
                output_token_ids_logprobs_val=None,
                output_token_ids_logprobs_idx=None,
            )
        )
        return BatchTokenIDOutput(
            rids=[req.rid],
            http_worker_ipcs=[req.http_worker_ipc],
            finished_reasons=[finish.to_json()],
            decoded_texts=[""],
            decode_ids=[array("i", prompt[surr_offset:] + ids)],
            read_offsets=[read_offset - surr_offset],
            output_ids=[array("i", ids)],
            skip_special_tokens=[sp.skip_special_tokens],
            spaces_between_special_tokens=[sp.spaces_between_special_tokens],
            no_stop_trim=[sp.no_stop_trim],
            prompt_tokens=[len(prompt)],
            reasoning_tokens=[0],
            completion_tokens=[len(ids)],
            cached_tokens=[0],
            cached_tokens_details=[None],
            output_token_entropy_val=None,
            output_token_sampling_mask=None,
            output_hidden_states=None,
            routed_experts=None,
            indexer_topk=None,
            placeholder_tokens_idx=None,
            placeholder_tokens_val=None,
            retraction_counts=[0],
            image_tokens=[0],
            audio_tokens=[0],
            video_tokens=[0],
            weight_versions=[spans],
            dp_ranks=None,
            **logprob_fields,
        )

    # ---- weights ----------------------------------------------------------------------------

    def update_weights_from_disk(self, req: UpdateWeightFromDiskReqInput, event: Optional[dict]):
        """SchedulerWeightUpdater.update_weights_from_disk and ModelRunner's
        update_weights_from_disk, with the model's load_weights run on a meta-device copy."""
        record: dict = {"files": [], "tensors": 0, "unexpected": [], "missing": [], "error": None}
        started = time.perf_counter()
        try:
            success, message = self._load_from_disk(req.model_path, req.load_format, record)
        finally:
            record["seconds"] = round(time.perf_counter() - started, 3)
            self.log.update(event, record)
        if success:
            # update_model_fields: the runner serves the new path from now on.
            self.model_path = req.model_path
            self.load_format = req.load_format
            if req.weight_version is not None:
                self.weight_version = req.weight_version
            # flush_cache_after_weight_update: nothing is ever running here, so the flush succeeds.
        else:
            self.log.update(event, {"error": message})
        return UpdateWeightFromDiskReqOutput(success=success, message=message, num_paused_requests=0)

    def _load_from_disk(self, model_path: str, load_format: str, record: dict):
        # ModelRunner's update_weights_from_disk points its model config at the new checkpoint first.
        model_config = copy.copy(self.model_config)
        model_config.model_path = model_path
        load_config = LoadConfig(load_format=load_format)
        loader = get_model_loader(load_config, model_config)
        if not isinstance(loader, DefaultModelLoader):
            return False, f"Failed to get model loader: {loader}."

        def weight_iter():
            source = DefaultModelLoader.Source.init_new(model_config, self.meta_model.model)
            _, files, _ = loader._prepare_weights(
                source.model_or_path, source.revision, source.fall_back_to_pt, source.allow_patterns_overrides
            )
            record["files"] = sorted(os.path.relpath(f, model_path) for f in files)
            return loader._get_weights_iterator(source)

        try:
            weights = weight_iter()
        except Exception as e:
            return False, f"Failed to get weights iterator: {e}."
        try:
            self.meta_model.load(weights, record)
        except Exception as e:
            message = f"Failed to update weights: {e}.\nRolling back to original weights."
            # SGLang's rollback re-reads its model config, which already names the new checkpoint:
            # it loads the weights that just failed once more. When they fail again the exception
            # leaves the scheduler, whose process then dies and takes the server with it.
            record["rollback_from"] = model_path
            try:
                self.meta_model.load(weight_iter(), {})
            except Exception as again:
                raise SchedulerDied(f"rolling back {model_path} failed: {again!r}") from again
            return False, message
        return True, "Succeeded to update model weights."

    def update_weight_version(self, req: UpdateWeightVersionReqInput, event: Optional[dict]):
        self.log.update(event, {"previous_weight_version": self.weight_version})
        self.weight_version = req.new_version
        return UpdateWeightVersionReqOutput()

    def flush_cache(self, req: FlushCacheReqInput, event: Optional[dict]):
        return FlushCacheReqOutput(success=True)

    def pause_generation(self, req: PauseGenerationReqInput, event: Optional[dict]) -> None:
        self.paused = True

    def continue_generation(self, req: ContinueGenerationReqInput, event: Optional[dict]) -> None:
        self.paused = False

    def get_internal_state(self, req: GetInternalStateReq, event: Optional[dict]):
        return GetInternalStateReqOutput(internal_state=msgspec_to_builtins(vars(self.server_args)))

    # ---- adapters ---------------------------------------------------------------------------

    def _init_lora(self) -> None:
        """LoRAManager.init_state: the --lora-paths adapters are loaded first (checked without a
        memory pool), then the pool's rank and target modules come from the flags, or else from
        those adapters."""
        for ref in get_lora().lora_paths or []:
            req = LoadLoRAAdapterReqInput(
                lora_name=ref.lora_name, lora_path=ref.lora_path, pinned=ref.pinned, lora_id=ref.lora_id
            )
            result = self.load_lora_adapter(req, None)
            if not result.success:
                raise RuntimeError(f"Failed to load LoRA adapter {ref.lora_name}: {result.error_message}")
        targets = get_lora().lora_target_modules
        if targets and set(targets) == {"all"}:
            targets = self.meta_model.lora_target_modules()
        elif targets:
            targets = get_normalized_target_modules(targets)
        else:
            targets = set().union(
                *(get_normalized_target_modules(c.target_modules) for c in self.lora_configs.values())
            )
        rank = get_lora().max_lora_rank
        if rank is None:
            rank = max((c.r for c in self.lora_configs.values()), default=0)
        self.lora_pool = types.SimpleNamespace(max_lora_rank=rank, lora_added_tokens_size=0, target_modules=targets)
        self.lora_pool.can_support = types.MethodType(LoRAMemoryPool.can_support, self.lora_pool)

    def _lora_manager_view(self) -> types.SimpleNamespace:
        """The LoRAManager state validate_new_adapter reads."""
        return types.SimpleNamespace(
            attn_dp_enabled=False,
            lora_refs=self.lora_refs,
            memory_pool=self.lora_pool,
            num_pinned_loras=self.num_pinned_loras,
            max_loras_per_batch=get_lora().max_loras_per_batch,
        )

    def _record(self, event: Optional[dict], action: str, record: dict) -> None:
        """A control request's record goes into its own event; the same work done as a side
        effect of another request (an evicted adapter reloaded for a generate request, an LRU
        eviction during a load) is listed under that request's `side_effects`."""
        if event is None:
            return
        if event.get("route") == f"/{action}":
            self.log.update(event, record)
        else:
            self.log.add_side_effect(event, {"action": action, **record})

    def _loaded(self) -> dict:
        return {ref.lora_name: ref.lora_path for ref in self.lora_refs.values()}

    def load_lora_adapter(self, req: LoadLoRAAdapterReqInput, event: Optional[dict]):
        """LoRAManager._load_lora_adapter up to the GPU copy."""
        ref = req.to_ref()
        record: dict = {"lora_name": ref.lora_name, "lora_path": ref.lora_path, "lora_id": ref.lora_id, "error": None}
        try:
            config = LoRAConfig(ref.lora_path, base_vocab_size=self.model_config.hf_text_config.vocab_size)
            record.update(rank=config.r, target_modules=config.target_modules, alpha=config.lora_alpha)
            LoRAManager.validate_new_adapter(self._lora_manager_view(), config, ref)
            record["tensors"] = self.meta_model.read_adapter(ref.lora_id, config)
        except Exception as e:
            record["error"] = str(e)
            self._record(event, "load_lora_adapter", record)
            return LoRAUpdateOutput(success=False, error_message=str(e), loaded_adapters=self._loaded())
        self.lora_configs[ref.lora_id] = config
        self.lora_refs[ref.lora_id] = ref
        self.num_pinned_loras += int(ref.pinned)
        self._record(event, "load_lora_adapter", record)
        return LoRAUpdateOutput(success=True, error_message="", loaded_adapters=self._loaded())

    def unload_lora_adapter(self, req: UnloadLoRAAdapterReqInput, event: Optional[dict]):
        ref = self.lora_refs.pop(req.lora_id, None)
        self.lora_configs.pop(req.lora_id, None)
        if ref is not None:
            self.num_pinned_loras -= int(ref.pinned)
        self._record(event, "unload_lora_adapter", {"lora_name": req.lora_name, "lora_id": req.lora_id})
        return LoRAUpdateOutput(success=True, error_message="", loaded_adapters=self._loaded())
