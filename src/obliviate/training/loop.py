"""The one training loop: supervised fine-tuning and every unlearning method run through it.

A method supplies ``loss_fn(model, batch) -> LossOutput``; the loop supplies everything else:
accelerate (several processes under ``accelerate launch``), bf16 autocast where the hardware has
it, gradient accumulation, warm-up and a learning-rate schedule, seeding, a progress bar with the
loss, checkpoints every N steps and at the end, exact resume, a guard that stops on a non-finite
loss or gradient (keeping the last good weights and checkpoint), and caller-defined stopping rules.

Data order is a deterministic function of the seed and the epoch, and a resumed run skips the
micro-batches already consumed, so an interrupted run resumed from its checkpoint ends with the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from obliviate.errors import ConfigError
from obliviate.models.precision import BF16Setting, bf16_autocast, resolve_bf16
from obliviate.runtime import share_threads
from obliviate.training.attention import training_attention
from obliviate.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from obliviate.training.progress import Progress
from obliviate.types import Model

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import Tensor
    from torch.optim.lr_scheduler import LRScheduler

log = logging.getLogger(__name__)


@dataclass
class LossOutput:
    """What a method's loss returns: the scalar to minimise and named floats to log."""

    loss: Tensor
    logs: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation settings shared by fine-tuning and every unlearning method."""

    lr: float = 1e-5  # peak learning rate (AdamW)
    epochs: float = 1.0  # passes over the data (fractions allowed); max_steps wins when set
    max_steps: int = 0  # stop after this many optimizer steps (0: use epochs)
    batch_size: int = 8  # examples per micro-batch, summed over processes
    grad_accum: int = 1  # micro-batches per optimizer step
    warmup: float = 0.0  # warm-up length: a fraction of all steps if < 1, else a step count
    schedule: Literal["linear", "cosine", "constant"] = "linear"  # learning-rate decay after warm-up: linear, cosine or constant
    weight_decay: float = 0.01  # AdamW weight decay
    max_grad_norm: float = 1.0  # gradient clipping (0: off)
    bf16: BF16Setting = "auto"  # bf16 autocast: auto (when the hardware supports it), on or off
    seed: int = 0  # seed of data order and initialisation
    save_every: int = 0  # checkpoint every N optimizer steps (0: only at the end)
    max_length: int = 256  # longest tokenized example; prompts are cut first

    def validate(self) -> None:
        """Raise ConfigError on values that cannot work, before anything is loaded."""
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ConfigError(
                f"train.lr must be a finite number greater than 0, got {self.lr} "
                "(a typical unlearning rate is 1e-5)"
            )
        for name in ("epochs", "warmup", "weight_decay", "max_grad_norm"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"train.{name} must be a finite number of 0 or more, got {value}")
        for name in ("batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "save_every", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be 0 or more, got {getattr(self, name)}")
        if self.max_steps == 0 and self.epochs == 0:
            raise ConfigError("set train.epochs > 0 or train.max_steps > 0")


@dataclass
class TrainResult:
    """What happened: the per-step log, the step count, the wall time and why training stopped."""

    log: list[dict[str, float]]
    steps: int
    seconds: float
    stopped: str  # "completed", "max_steps", a stopping rule's message, or "diverged: ..."
    bf16: bool = False
    attention: str | None = None  # the attention kernel training switched to (training.attention), None: the model's own

    @property
    def diverged(self) -> bool:
        return self.stopped.startswith("diverged")


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The deterministic shuffled order of ``n`` items in one epoch."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(n))
    rng.shuffle(order)
    return order


GROUP_WINDOW = 8
"""Length grouping sorts windows of this many batches of the shuffled order (HF's megabatches)."""


def group_by_length(order: list[int], lengths: Sequence[int], batch_size: int) -> list[int]:
    """Reorder a shuffled epoch so each batch holds examples of similar length.

    The order is cut into windows of ``GROUP_WINDOW`` batches and each window is sorted by length,
    longest first: batches pad far less (on SmolLM2 and the fictional QA, ~20 % fewer tokens
    per step) while which examples share a window stays random from epoch to epoch.
    """
    window = GROUP_WINDOW * batch_size
    out: list[int] = []
    for i in range(0, len(order), window):
        out += sorted(order[i : i + window], key=lambda j: -lengths[j])
    return out


def _micro_batches(
    n: int, cfg: TrainConfig, total_micro: int, lengths: Sequence[int] | None = None
) -> list[tuple[int, list[int]]]:
    """Every micro-batch of the run in order, as ``(epoch, item indices)``."""
    out: list[tuple[int, list[int]]] = []
    epoch = 0
    while len(out) < total_micro:
        order = epoch_order(n, cfg.seed, epoch)
        if lengths is not None:
            order = group_by_length(order, lengths, cfg.batch_size)
        for i in range(0, n, cfg.batch_size):
            out.append((epoch, order[i : i + cfg.batch_size]))
            if len(out) == total_micro:
                break
        epoch += 1
    return out


def epoch_view(items: Sequence[Any], epoch: int) -> Sequence[Any]:
    """The items as epoch ``epoch`` sees them: ``items.at_epoch(epoch)`` when they define it.

    Items that redraw part of themselves every epoch (the retain partners of
    :class:`obliviate.unlearning.PairedItems`) implement ``at_epoch``; a plain list is the same in
    every epoch.
    """
    at_epoch = getattr(items, "at_epoch", None)
    return at_epoch(epoch) if at_epoch is not None else items


def make_adamw(groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """AdamW, fused where torch has a fused kernel for the parameters' device and dtype.

    On a 2-core CPU the fused step of SmolLM2-135M takes 0.15 s against 0.41 s for the default
    per-parameter loop (bench/prepare_cold.py); other devices fall back to torch's default.
    """
    import torch

    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr)


def plan_steps(n_items: int, cfg: TrainConfig) -> int:
    """Number of optimizer steps a run will take."""
    per_epoch = math.ceil(math.ceil(n_items / cfg.batch_size) / cfg.grad_accum)
    if cfg.max_steps:
        return cfg.max_steps
    return max(1, math.ceil(per_epoch * cfg.epochs))


def train(
    model: Model,
    loss_fn: Callable[[Model, Any], LossOutput],
    items: Sequence[Any],
    collate_fn: Callable[[list[Any]], Any],
    cfg: TrainConfig,
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    grad_hook: Callable[[Model], None] | None = None,
    stop_rule: Callable[[dict[str, float]], str | None] | None = None,
    progress: bool = True,
    description: str = "training",
    accelerator: Accelerator | None = None,
    lengths: Sequence[int] | None = None,
    final_checkpoint: bool = True,
) -> TrainResult:
    """Train ``model`` in place on ``items``.

    Args:
        model: the model; only parameters with ``requires_grad`` are optimised.
        loss_fn: ``loss_fn(model, batch) -> LossOutput``.
        items: the examples; ``collate_fn`` turns a list of them into a batch. Items that
            define ``at_epoch(epoch)`` are read through it, epoch by epoch (:func:`epoch_view`).
        collate_fn: builds a batch (tensors on CPU; the loop moves them to the device).
        cfg: optimisation settings.
        checkpoint_dir: where to keep the last checkpoint (None: no checkpoints).
        resume: continue from ``checkpoint_dir/last`` when it exists.
        grad_hook: called after the backward pass of each optimizer step, before clipping
            (gradient masks such as WAGLE's).
        stop_rule: called with each step's log; a returned message stops training.
        progress: show a progress bar with the loss (main process only).
        description: the progress bar's label.
        accelerator: an ``accelerate.Accelerator`` to reuse (one is created otherwise).
        lengths: each item's token count; when given, batches group items of similar length
            (see :func:`group_by_length`), which saves the compute spent on padding.
        final_checkpoint: also checkpoint after the last step. A caller that saves the model
            itself right away (``obliviate unlearn``) turns it off: on SmolLM2 the weights and
            optimizer state take ~4.5 s to write, only to be deleted a second later.
    """
    import torch
    from accelerate import Accelerator
    from transformers import get_scheduler

    cfg.validate()
    if not items:
        raise ConfigError("nothing to train on: the training set is empty")
    use_bf16 = resolve_bf16(cfg.bf16)
    # Autocast is ours, not accelerate's: accelerate's mixed-precision setting is process-global
    # state that cannot change between runs in one process (tests, the demo).
    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    if acc.distributed_type.name in ("FSDP", "DEEPSPEED"):
        raise ConfigError(
            f"training under accelerate's {acc.distributed_type.name} is not supported yet: the "
            "sharded weights would need gathering before the divergence guard and the save; "
            "launch data-parallel (accelerate launch --multi_gpu) or train LoRA adapters "
            "(--lora.enabled true) on a model too large for one GPU"
        )
    autocast = bf16_autocast(acc.device, use_bf16)
    world, rank = acc.num_processes, acc.process_index
    if cfg.batch_size % world:
        raise ConfigError(
            f"train.batch_size {cfg.batch_size} must be divisible by the {world} processes"
        )
    seed_everything(cfg.seed)

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = make_adamw(groups, cfg.lr)
    total_steps = plan_steps(len(items), cfg)
    warmup = int(cfg.warmup * total_steps) if cfg.warmup < 1 else int(cfg.warmup)
    sched_name = {"constant": "constant_with_warmup"}.get(cfg.schedule, cfg.schedule)
    scheduler = get_scheduler(
        sched_name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
    model.train()
    model, optimizer = acc.prepare(model, optimizer)
    # the parameters the wrapped model trains
    params = [p for p in model.parameters() if p.requires_grad]

    state: dict[str, Any] = {"step": 0, "log": []}
    if resume and has_checkpoint(checkpoint_dir):
        state = load_checkpoint(checkpoint_dir, acc.unwrap_model(model), optimizer, scheduler)
        log.info("resumed from %s at step %d", checkpoint_dir, state["step"])
    micro = _micro_batches(len(items), cfg, total_steps * cfg.grad_accum, lengths)
    # the weights before each update (restored if it blows up)
    last_good = [torch.empty_like(p) for p in params]
    view, view_epoch = items, -1  # the items of the current epoch (see epoch_view)
    history: list[dict[str, float]] = state["log"]
    step = state["step"]
    stopped = "completed" if not cfg.max_steps else "max_steps"
    start = time.perf_counter()
    bar = Progress(progress and acc.is_main_process, description, total_steps, step)
    scope = contextlib.ExitStack()
    try:
        switched = scope.enter_context(
            training_attention(model, acc.device, cfg.max_length, use_bf16)
        )
        while step < total_steps:
            # a fair share of the cores beside other obliviate processes (obliviate.runtime)
            share_threads()
            optimizer.zero_grad(set_to_none=True)
            logs_acc: dict[str, float] = {}
            finite = True
            for k in range(cfg.grad_accum):
                epoch, idx = micro[step * cfg.grad_accum + k]
                if epoch != view_epoch:
                    view, view_epoch = epoch_view(items, epoch), epoch
                idx = idx[rank::world]
                batch = _to_device(collate_fn([view[i] for i in idx]), acc.device)
                with autocast:
                    out = loss_fn(model, batch)
                loss = out.loss / cfg.grad_accum
                if not torch.isfinite(out.loss.detach()):
                    finite = False
                    logs_acc["loss"] = float(out.loss.detach())
                    break
                acc.backward(loss)
                logs_acc["loss"] = (
                    logs_acc.get("loss", 0.0) + float(out.loss.detach()) / cfg.grad_accum
                )
                for key, v in out.logs.items():
                    logs_acc[key] = logs_acc.get(key, 0.0) + float(v) / cfg.grad_accum
            if finite:
                if grad_hook is not None:
                    grad_hook(acc.unwrap_model(model))
                norm = acc.clip_grad_norm_(
                    params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
                )
                finite = bool(torch.isfinite(torch.as_tensor(norm)))
                logs_acc["grad_norm"] = float(norm)
            if not finite:
                optimizer.zero_grad(set_to_none=True)
                stopped = (
                    f"diverged: non-finite loss or gradient at step {step + 1} "
                    f"(loss={logs_acc.get('loss')}); the weights are those of step {step}"
                )
                log.error(stopped)
                break
            with torch.no_grad():
                for kept, p in zip(last_good, params):
                    kept.copy_(p.detach())
            optimizer.step()
            # e.g. an absurd learning rate: keep the weights of the last good step
            if not weights_finite(params):
                with torch.no_grad():
                    for kept, p in zip(last_good, params):
                        p.copy_(kept)
                stopped = (
                    f"diverged: the update of step {step + 1} made the weights "
                    f"non-finite or absurdly large (loss={logs_acc.get('loss')}); the "
                    f"weights are those of step {step}"
                )
                log.error(stopped)
                break
            scheduler.step()
            step += 1
            logs_acc = {"step": step, "lr": scheduler.get_last_lr()[0], **logs_acc}
            if world > 1:
                logs_acc = _mean_across(acc, logs_acc)
            history.append(logs_acc)
            bar.update(step, logs_acc["loss"])
            if (
                checkpoint_dir is not None
                and cfg.save_every
                and step % cfg.save_every == 0
                and step < total_steps
            ):
                _save(acc, checkpoint_dir, model, optimizer, scheduler, step, history)
            if stop_rule is not None:
                message = stop_rule(logs_acc)
                if message:
                    stopped = message
                    break
    finally:
        scope.close()
        bar.close()
    if checkpoint_dir is not None and final_checkpoint and not stopped.startswith("diverged"):
        _save(acc, checkpoint_dir, model, optimizer, scheduler, step, history)
    acc.wait_for_everyone()
    model.eval()
    return TrainResult(history, step, time.perf_counter() - start, stopped, use_bf16, switched)


def weights_finite(params: Sequence[Tensor]) -> bool:
    """Whether every weight is finite and no tensor's L2 norm overflows its dtype
    (weights near 1e19+)."""
    import torch

    with torch.no_grad():
        return all(bool(torch.isfinite(torch.linalg.vector_norm(p.detach()))) for p in params)


def _save(
    acc: Accelerator,
    directory: Path,
    model: Model,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    step: int,
    history: list,
) -> None:
    acc.wait_for_everyone()
    if acc.is_main_process:
        save_checkpoint(
            directory, acc.unwrap_model(model), optimizer, scheduler, {"step": step, "log": history}
        )
    acc.wait_for_everyone()


def _to_device(batch: Any, device: Any) -> Any:
    if hasattr(batch, "to") and not isinstance(batch, dict):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _mean_across(acc: Accelerator, logs: dict[str, float]) -> dict[str, float]:
    import torch

    keys = sorted(logs)
    t = torch.tensor([float(logs[k]) for k in keys], device=acc.device)
    t = acc.reduce(t, reduction="mean")
    return {k: (int(logs[k]) if k == "step" else float(v)) for k, v in zip(keys, t.tolist())}
