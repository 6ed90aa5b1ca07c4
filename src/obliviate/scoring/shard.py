"""Evaluation over several processes: each process scores a share of the batches, then all gather.

Under ``accelerate launch`` (or torchrun) every process runs the same evaluation with the same
requests. :class:`ModelScorer` forms its batches exactly as one process would (the same length
sort, the same batch size), each process runs batches ``rank, rank + world, ...``, and the
per-request results are gathered to every process. A batch is computed with the same shapes and
kernels as in a single process, so the numbers are the single process's, item by item (tested
with two CPU processes in ``tests/integration/test_distributed.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` evaluating processes."""

    rank: int
    world: int

    def mine(self, batch_index: int) -> bool:
        """Whether this process runs the batch with this index (round robin)."""
        return batch_index % self.world == self.rank

    def barrier(self) -> None:
        """Wait until every process reaches this point."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, local: dict[int, Any]) -> dict[int, Any]:
        """Every process's ``{request index: result}``, merged (a collective: all
        processes call it)."""
        if self.world == 1:
            return dict(local)
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world
        dist.all_gather_object(parts, local)
        merged: dict[int, Any] = {}
        for part in parts:
            merged.update(part)
        return merged


def launched_processes() -> int:
    """How many processes ``accelerate launch``/torchrun started (1 when run plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_first_process() -> bool:
    """Whether this is the first (or only) launched process: the one that reports."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def current_shard() -> Shard | None:
    """This process's shard when several were launched, starting their process group; else None."""
    if launched_processes() <= 1:
        return None
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # gloo on CPU, as the training loop
    return Shard(state.process_index, state.num_processes) if state.num_processes > 1 else None
