"""
SGLang's model class for the served architecture (Qwen2ForCausalLM for Qwen2.5-Coder), built on
PyTorch's meta device: every parameter has its shape and SGLang's weight_loader but no storage. A
disk reload runs the model's own `load_weights` over SGLang's weight iterator against it, so the
checkpoint's tensor names go through SGLang's name mapping (q/k/v into qkv_proj, gate/up into
gate_up_proj, tied embeddings) and its shape checks, and nothing is copied.

Which checkpoint names were used and which parameters were written is observed from outside:
the iterator is wrapped to know the name being loaded, and each parameter's weight_loader to know
that it was written.
"""
import logging
import socket
from typing import Iterable, Optional

import torch

logger = logging.getLogger("conformance.meta_model")


def _init_single_process_group(server_args) -> None:
    """The process groups of a one-process world, built by SGLang's own bootstrap sequence
    (distributed/bootstrap.py, as the scheduler's init_parallel_runtime runs it) on gloo instead of
    NCCL, without its CPU thread pinning, which would also pin the tokenizer manager's threads."""
    from sglang.srt.distributed import bootstrap

    if torch.distributed.is_initialized():
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bootstrap._init_parallel_groups(
        backend="gloo", dist_init_method=f"tcp://127.0.0.1:{port}", server_args=server_args, gpu_id=0
    )


class MetaModel:
    def __init__(self, model_config, server_args) -> None:
        self.model_config = model_config
        self.server_args = server_args
        self.model: Optional[torch.nn.Module] = None
        self.build_error: Optional[str] = None
        try:
            self.model = self._build()
        except Exception as e:
            self.build_error = f"{type(e).__name__}: {e}"
            logger.warning("SGLang's model class could not be built on the meta device: %s", self.build_error)

    def _build(self) -> torch.nn.Module:
        from sglang.srt.configs.load_config import LoadConfig
        from sglang.srt.distributed.bootstrap import init_layer_runtime
        from sglang.srt.model_loader.loader import _initialize_model
        from sglang.srt.model_loader.utils import set_default_torch_dtype
        from sglang.srt.runtime_context import SpawnRanks, create_context, use_context

        # The scheduler process publishes its config with its rank (run_scheduler_process); this
        # process published the tokenizer's, which has no rank. SGLang's embedding API builds the
        # scheduler's view beside it and activates it while the model is built. Nothing else runs
        # then: the tokenizer manager starts after the scheduler reports ready.
        self.context = create_context(self.server_args, role="scheduler", ranks=SpawnRanks(world_rank=0, gpu_id=0))
        # RotaryEmbedding picks its kernel when built: on a platform that is neither CUDA nor
        # SGLang's CPU engine (which needs the CPU build of sgl-kernel) it imports vLLM's. Built as
        # for the CPU engine, it keeps the native path; the meta model never runs forward anyway.
        import sglang.srt.layers.rotary_embedding.base as rope_base

        was_cpu, rope_base._is_cpu = rope_base._is_cpu, True
        try:
            with use_context(self.context):
                _init_single_process_group(self.server_args)
                init_layer_runtime(model_config=self.model_config)
                with set_default_torch_dtype(self.model_config.dtype), torch.device("meta"):
                    return _initialize_model(self.model_config, LoadConfig())
        finally:
            rope_base._is_cpu = was_cpu

    def load(self, weights: Iterable, record: dict) -> None:
        """Runs the model's load_weights. Fills `record` as it goes, so that a load that raises
        still tells how far it got: tensors (read), unexpected (checkpoint names it did not use),
        missing (parameters it did not write), failed_at (the name being loaded when it raised)."""
        if self.model is None:
            raise RuntimeError(f"no model to check the weights against: {self.build_error}")
        from sglang.srt.model_loader.loader import DefaultModelLoader
        from sglang.srt.model_loader.weight_utils import default_weight_loader

        params = dict(self.model.named_parameters())
        written: set[str] = set()
        used: set[str] = set()
        names: list[str] = []
        current: list[Optional[str]] = [None]
        originals = {}
        for pname, param in params.items():
            original = getattr(param, "weight_loader", None)
            originals[pname] = original
            base = original or default_weight_loader

            def loader(p, *args, _pname=pname, _base=base, **kwargs):
                written.add(_pname)
                if current[0] is not None:
                    used.add(current[0])
                return _base(p, *args, **kwargs)

            param.weight_loader = loader

        def tapped():
            for name, tensor in weights:
                current[0] = name
                names.append(name)
                yield name, tensor
            current[0] = None

        try:
            # load_weights_and_postprocess without the postprocess: that step repacks quantized
            # weights on the device, which a meta tensor cannot be, and does nothing unquantized.
            DefaultModelLoader.load_weights_only(self.model, tapped(), torch.device("meta"))
        except BaseException:
            record["failed_at"] = current[0]
            raise
        finally:
            for pname, param in params.items():
                if originals[pname] is None:
                    del param.weight_loader
                else:
                    param.weight_loader = originals[pname]
            record["tensors"] = len(names)
            record["unexpected"] = sorted(set(names) - used - {current[0]})
            record["missing"] = sorted(set(params) - written)

    def lora_target_modules(self) -> set:
        """What `--lora-target-modules all` resolves to (LoRAManager.init_lora_shapes)."""
        from sglang.srt.lora.utils import auto_detect_lora_target_modules, EMBEDDING_NAMES

        if self.model is None:
            raise RuntimeError(f"no model to resolve 'all' against: {self.build_error}")
        return set(auto_detect_lora_target_modules(self.model)) | set(EMBEDDING_NAMES)

    def read_adapter(self, lora_id: str, config) -> int:
        """LoRAManager.load_lora_weights up to the memory pool: SGLang's LoRAAdapter reads and
        normalizes the adapter's tensors on CPU. Returns how many tensors it kept."""
        from sglang.srt.configs.load_config import LoadConfig
        from sglang.srt.lora.lora import LoRAAdapter

        hf_config = self.model_config.hf_config
        base_hf_config = hf_config.get_text_config() if hasattr(hf_config, "get_text_config") else hf_config
        adapter = LoRAAdapter(lora_id, config, base_hf_config, LoadConfig(), None, base_model=self.model)
        adapter.initialize_weights()
        return sum(len(layer.weights) for layer in adapter.layers) + len(adapter.embedding_layers)
