"""Sharding across processes started by ``torchrun`` (one per GPU, or several CPU processes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..settings import torchrun_rank


@dataclass
class DistContext:
    """Rank information; a single process is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group this context joined, once every rank is here.

        Left to process exit, gloo's threads can abort a rank that is still shutting down while
        another has closed its sockets ("terminate called without an active exception": about
        1 run in 10 here), so a finished run is reported as failed. A group the caller made
        itself is left alone.
        """
        if self.owns_group:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (only a list of one without torchrun)."""
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out


def dist_context(device: str | None = None) -> DistContext:
    """Join the process group when launched by torchrun.

    Args:
        device: The run's ``--device``. NCCL (and GPU ``LOCAL_RANK``, or the one ``device``
            names, as the process's current device: NCCL's collectives run there) when it is
            CUDA, or None with CUDA present; gloo otherwise, also on a CUDA machine.
    """
    world, _, local_rank = torchrun_rank()
    if world <= 1:
        return DistContext()
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        requested = torch.device(device) if device else None
        cuda = torch.cuda.is_available() and (requested is None or requested.type == "cuda")
        if cuda:
            pinned = requested is not None and requested.index is not None
            torch.cuda.set_device(requested.index if pinned else local_rank)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, owns)
