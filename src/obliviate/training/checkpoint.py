"""Training checkpoints: trainable weights, optimizer and scheduler state, RNG state and the log.

Only one checkpoint is kept (``<dir>/last``); it is written with
:func:`obliviate.files.write_folder`, so a crash while saving leaves the previous checkpoint intact.
Weights are safetensors; optimizer state is read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.types import Model

if TYPE_CHECKING:
    from torch import Tensor
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler

LAST = "last"


def trainable_state(model: Model) -> dict[str, Tensor]:
    """The parameters that receive gradients, by name (contiguous CPU copies)."""
    return {
        n: p.detach().to("cpu").contiguous().clone()
        for n, p in model.named_parameters()
        if p.requires_grad
    }


def save_checkpoint(
    directory: Path,
    model: Model,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    state: dict[str, Any],
) -> Path:
    """Write ``directory/last`` atomically and return it."""
    import torch
    from safetensors.torch import save_file

    from obliviate.files import write_folder

    def fill(tmp: Path) -> None:
        save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
            },
            tmp / "optimizer.pt",
        )
        (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")

    return write_folder(directory / LAST, fill)


def has_checkpoint(directory: Path | None) -> bool:
    """Whether ``directory`` holds a checkpoint (one stranded by a kill mid-swap is
    recovered first)."""
    if directory is None:
        return False
    from obliviate.files import recover_folder

    recover_folder(directory / LAST)
    return (directory / LAST / "state.json").is_file()


def load_checkpoint(
    directory: Path, model: Model, optimizer: Optimizer, scheduler: LRScheduler
) -> dict[str, Any]:
    """Restore a checkpoint into live objects; returns the saved loop state."""
    import torch
    from safetensors.torch import load_file

    path = directory / LAST
    weights = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise RuntimeError(
            f"checkpoint {path} does not match the model (unknown parameters {missing[:3]})"
        )
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t.to(params[n].device, params[n].dtype))
    blob = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["rng"])
    return json.loads((path / "state.json").read_text(encoding="utf-8"))
