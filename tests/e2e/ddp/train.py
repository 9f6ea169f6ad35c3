"""A tiny real DDP training run (gloo, CPU) that checkpoints and resumes.

Usage: train.py CKPT_DIR TOTAL_STEPS [SECONDS_PER_STEP] [FAIL_RANK]

Works under torchrun (RANK/WORLD_SIZE/LOCAL_RANK from torchrun) and under one srun
task per process (RANK/WORLD_SIZE/MASTER_ADDR from gsched's step environment, or
SLURM_PROCID/SLURM_NTASKS). Rank 0 writes a checkpoint after every step; a restarted
run continues from the step it records. With FAIL_RANK, that rank exits 3 at step 2.
"""

from __future__ import annotations

import datetime
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def say(text: str) -> None:
    """One write per line: ranks that share a pipe (torchrun) never split each other's lines."""
    os.write(1, (text + "\n").encode())


def main() -> None:
    ckpt_dir, total = sys.argv[1], int(sys.argv[2])
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    fail_rank = int(sys.argv[4]) if len(sys.argv) > 4 else -1
    rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
    world = int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1")))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29400")
    dist.init_process_group(
        "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60)
    )
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(512, 8, generator=gen)
    y = x @ torch.arange(1.0, 9.0).unsqueeze(1) + 0.01 * torch.randn(512, 1, generator=gen)
    xs, ys = x[rank::world], y[rank::world]
    model = torch.nn.Linear(8, 1)
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    path = os.path.join(ckpt_dir, "ckpt.pt")
    start = 0
    if os.path.exists(path):
        state = torch.load(path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        say(f"rank {rank} resumed at step {start}")
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    for step in range(start, total):
        if step == 2 and rank == fail_rank:
            say(f"rank {rank} failing on purpose")
            os._exit(3)
        loss = torch.nn.functional.mse_loss(ddp(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        avg = loss.detach().clone()
        dist.all_reduce(avg)
        avg /= world
        if rank == 0:
            tmp = path + ".tmp"
            torch.save({"step": step + 1, "model": model.state_dict(),
                        "opt": opt.state_dict()}, tmp)
            os.replace(tmp, path)
        say(f"rank {rank}/{world} restart {restarts} step {step} loss {avg.item():.6f}")
        time.sleep(pause)
    dist.barrier()
    dist.destroy_process_group()
    say(f"rank {rank} done")
    os._exit(0)  # avoid a rare hang in interpreter teardown after gloo (TESTING.md)


if __name__ == "__main__":
    main()
