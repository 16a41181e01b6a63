#!/usr/bin/env bash
# The built-in trainer on a lent GPU, in one command (under 10 minutes, nothing fetched):
# tokens/s, model FLOPs utilisation and peak memory of Qwen2.5-Coder-0.5B, full weights, LoRA and
# packed (python/bench_gpu_trainer.py; its arguments pass through, e.g. --peak-tflops 989 --devices 2).
# Runs with the project's .venv when there is one, else the machine's python3 (PyTorch and
# transformers). LoRA needs peft: a copy carried at .venv/lib/python3.11/site-packages/peft (with
# accelerate beside it) is used when the machine's python has none.
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
site=.venv/lib/python3.11/site-packages
if ! "$python" -c 'import peft' 2>/dev/null && [ -d "$site/peft" ]; then
  export PYTHONPATH="$PWD/$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$python" -c 'import torch; print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
"$python" -c 'import transformers, sys; print(f"transformers {transformers.__version__}, python {sys.version.split()[0]}")'
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null || true
exec timeout 570 "$python" python/bench_gpu_trainer.py "$@"
