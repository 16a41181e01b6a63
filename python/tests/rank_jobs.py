"""Runs trainer jobs one after another in one process group, so that a test starts the ranks once
for many cases: python python/torchrun.py --standalone --nproc_per_node=2 python/tests/rank_jobs.py JOB...
(trainer.main joins a process group that is already initialised and leaves it open)."""
import sys
from pathlib import Path

import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import trainer  # noqa: E402

if __name__ == "__main__":
    dist.init_process_group("gloo")
    for job in sys.argv[1:]:
        trainer.main([job])
    dist.destroy_process_group()
