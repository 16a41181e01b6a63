"""The worker behind the conformance engine: vLLM's model loading, LoRA manager and in-place weight
reload, on the CPU.

vLLM's CPUWorker cannot start from the CUDA wheel (its constructor calls the CPU build's kernel
`torch.ops._C.init_cpu_memory_env`), and the GPU Worker needs CUDA, so this small class takes
their place behind vLLM's UniProcExecutor (chosen with `parallel_config.worker_cls`, vLLM's own
extension point). Everything it does is vLLM code:
- `init_worker_distributed_environment` (gloo, world size 1), as the workers call it;
- `DefaultModelLoader.load_model`: the model class (e.g. Qwen2ForCausalLM) built on the CPU and the
  checkpoint loaded through its own `load_weights`;
- `LoRAModelRunnerMixin`: the model runner's LoRA methods (LRUCacheWorkerLoRAManager, i.e.
  PEFTHelper.from_local_dir, validate_legal, LoRAModel.from_local_checkpoint);
- `model_loader.reload.inplace.reload_weights`, the function GPUModelRunner.reload_weights calls.
What it adds is the report of the last weight load (files, tensor count, errors, parameters not
loaded), which the engine writes to the conformance log.
"""

import dataclasses
import os

import torch
import torch.nn as nn
from vllm.config import VllmConfig, set_current_vllm_config
from vllm.model_executor.model_loader import get_model_loader
from vllm.model_executor.model_loader.default_loader import DefaultModelLoader
from vllm.model_executor.model_loader.reload.inplace import reload_weights
from vllm.tasks import SupportedTask
from vllm.utils.torch_utils import set_random_seed
from vllm.v1.worker.gpu_worker import init_worker_distributed_environment
from vllm.v1.worker.lora_model_runner_mixin import LoRAModelRunnerMixin
from vllm.v1.worker.worker_base import WorkerBase


@dataclasses.dataclass
class WeightLoadReport:
    path: str
    files: list[str] = dataclasses.field(default_factory=list)
    tensors: int = 0
    # The text of what load_weights raised: vLLM stops at the first checkpoint name it cannot place
    # and names it (the model's parameter names follow).
    unexpected: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)


class CpuModelRunner(LoRAModelRunnerMixin):
    def __init__(self, vllm_config: VllmConfig) -> None:
        self.vllm_config = vllm_config
        self.lora_config = vllm_config.lora_config
        self.device = torch.device("cpu")
        self.model: nn.Module | None = None

    def get_model(self) -> nn.Module:
        assert self.model is not None
        return self.model

    def load_model(self) -> None:
        config = self.vllm_config
        model = get_model_loader(config.load_config).load_model(config, config.model_config)
        if self.lora_config:
            model = self.load_lora_model(model, config, self.device)
        self.model = model

    def weight_files(self, path: str) -> list[str]:
        """The files `get_all_weights` reads from `path`: `_prepare_weights` with the arguments it passes."""
        model = self.get_model()
        loader = get_model_loader(self.vllm_config.load_config)
        assert isinstance(loader, DefaultModelLoader)
        _, files, _, _ = loader._prepare_weights(
            path,
            None,
            None,
            getattr(model, "fall_back_to_pt_during_load", True),
            getattr(model, "allow_patterns_overrides", None),
        )
        return sorted(os.path.basename(f) for f in files)

    def reload_weights(
        self,
        weights_iterator,
        weights_path: str | None,
        is_checkpoint_format: bool,
        report: WeightLoadReport,
    ) -> None:
        model = self.get_model()
        # The same set reload_weights compares with what load_weights returns.
        expected = {
            name.replace(".base_layer.", ".") if self.lora_config else name
            for name, _ in model.named_parameters()
        }
        load_weights = model.load_weights

        def counted(weights):
            for name, tensor in weights:
                report.tensors += 1
                yield name, tensor

        def recording_load_weights(weights):
            try:
                loaded = load_weights(counted(weights))
            except Exception as e:
                report.unexpected.append(str(e))
                raise
            if loaded is not None:
                report.missing = sorted(expected - loaded)
            return loaded

        model.load_weights = recording_load_weights
        try:
            reload_weights(self.vllm_config, model, weights_iterator, weights_path, is_checkpoint_format)
        finally:
            del model.load_weights
        # GPUModelRunner.reload_weights does this too: adapters were built on the old weights.
        self.reset_lora_state()


class CpuWorker(WorkerBase):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.last_weight_load: WeightLoadReport | None = None

    def init_device(self) -> None:
        self.device = torch.device("cpu")
        init_worker_distributed_environment(
            self.vllm_config, self.rank, self.distributed_init_method, self.local_rank, "gloo"
        )
        set_random_seed(self.model_config.seed)
        self.model_runner = CpuModelRunner(self.vllm_config)

    def load_model(self) -> None:
        with set_current_vllm_config(self.vllm_config):
            self.model_runner.load_model()
        self.last_weight_load = WeightLoadReport(
            path=self.model_config.model,
            files=self.model_runner.weight_files(self.model_config.model),
        )

    def get_model(self) -> nn.Module:
        return self.model_runner.get_model()

    def get_supported_tasks(self) -> tuple[SupportedTask, ...]:
        return ("generate",)

    def reload_weights(
        self,
        weights_iterator=None,
        weights_path: str | None = None,
        is_checkpoint_format: bool = True,
    ) -> None:
        report = WeightLoadReport(path=weights_path or self.model_config.model)
        self.last_weight_load = report
        if weights_iterator is None:
            try:
                report.files = self.model_runner.weight_files(report.path)
            except Exception:
                pass  # reload_weights below raises the same error, from where vLLM raises it.
        with set_current_vllm_config(self.vllm_config):
            self.model_runner.reload_weights(weights_iterator, weights_path, is_checkpoint_format, report)

    def add_lora(self, lora_request) -> bool:
        return self.model_runner.add_lora(lora_request)

    def remove_lora(self, lora_id: int) -> bool:
        return self.model_runner.remove_lora(lora_id)

    def pin_lora(self, lora_id: int) -> bool:
        return self.model_runner.pin_lora(lora_id)

    def list_loras(self) -> set[int]:
        return self.model_runner.list_loras()

    def reset_encoder_cache(self) -> None:
        pass

    def check_health(self) -> None:
        pass

    def shutdown(self) -> None:
        pass
