"""
torchrun (torch.distributed.run) for the built-in trainer, keeping its exit status 65.

    python python/torchrun.py --standalone --nproc_per_node=N python/trainer.py JOB.json

torchrun exits with status 1 whenever a rank fails, whatever the rank's own status. The launcher
must still tell a job that no retry can fix (the trainer exits 65 on every rank: an unknown config
key, an optimizer state of other parameters; docs/trainer-contract.md) from a crash, which it
retries. Everything else is torchrun's, run as `python -m torch.distributed.run` would run it.
"""
import sys

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main

JOB_REJECTED = 65

if __name__ == "__main__":
    try:
        main()
    except ChildFailedError as e:
        sys.exit(JOB_REJECTED if any(f.exitcode == JOB_REJECTED for f in e.failures.values()) else 1)
