"""Run one unlearning method through the training loop.

Builds the training items (each forget item paired with a retain item and a template answer
where the method uses them), creates the reference model only when a method asks for it, plugs the
method's loss into :func:`obliviate.training.train`, applies LoRA when asked, and returns the
unlearned model with the training result.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.data.formatting import (
    Encoded,
    PromptFormatter,
    encode_record,
    make_collate,
    warn_truncated,
)
from obliviate.data.records import QA, Record
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError, DataError
from obliviate.methods.base import MethodContext, UnlearnMethod
from obliviate.models.lora import LoraOptions
from obliviate.training.loop import TrainConfig, TrainResult, train


@dataclass
class StopOptions:
    """Stopping rules beyond max steps and epochs."""

    forget_loss_above: float = 0.0  # stop once the forget NLL (mean per token) reaches this (0: off)
    retain_loss_below: float = 0.0  # stop if the retain NLL rises above this ceiling (0: off)

    def validate(self) -> None:
        for name in ("forget_loss_above", "retain_loss_below"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"stop.{name} must be a finite number of 0 or more (0: off), got {value}")


def retain_partner(seed: int, epoch: int, index: int, n_retain: int) -> int:
    """The retain item paired with forget item ``index`` in epoch ``epoch``: uniform, seeded by all three.

    TOFU and open-unlearning draw a fresh partner on every access; drawing one per (seed, epoch,
    item) keeps that while a run stays reproducible and resumable.
    """
    return random.Random(f"retain-partner:{seed}:{epoch}:{index}").randrange(n_retain)


class PairedItems(list):
    """Training items whose retain partner is redrawn every epoch (the list itself is epoch 0).

    The training loop reads epoch ``e`` through :meth:`at_epoch`
    (:func:`obliviate.training.loop.epoch_view`); everything else (a method's ``prepare``, LoRA
    initialisation) sees epoch 0. Retain records are encoded on first use and kept.
    """

    def __init__(
        self, items: list[dict[str, Any]], retain: Sequence[Record], formatter: PromptFormatter, max_length: int, seed: int
    ) -> None:
        super().__init__(items)
        self._retain, self._formatter, self._max_length, self._seed = retain, formatter, max_length, seed
        self._encoded: dict[int, Encoded] = {}
        self._views: dict[int, list[dict[str, Any]]] = {}
        for item in self:
            item["retain"] = self.retain_encoded(self.partner(0, item["index"]))

    def partner(self, epoch: int, index: int) -> int:
        """Which retain record forget item ``index`` is paired with in ``epoch``."""
        return retain_partner(self._seed, epoch, index, len(self._retain))

    def retain_encoded(self, j: int) -> Encoded:
        if j not in self._encoded:
            self._encoded[j] = encode_record(self._formatter, self._retain[j], self._max_length)
        return self._encoded[j]

    def at_epoch(self, epoch: int) -> list[dict[str, Any]]:
        """The items with epoch ``epoch``'s retain partners (the last view is kept)."""
        if epoch == 0:
            return self
        if epoch not in self._views:
            self._views = {epoch: [{**item, "retain": self.retain_encoded(self.partner(epoch, item["index"]))} for item in self]}
        return self._views[epoch]


def build_items(
    task: UnlearningTask, formatter: PromptFormatter, method: UnlearnMethod, max_length: int, seed: int
) -> list[dict[str, Any]]:
    """One item per forget record: the forget example, a paired retain example, a template answer.

    What an item holds is read from the method instance (``method.uses_retain``,
    ``method.uses_template``), so a wrapper such as WAGLE can declare what its base method needs.

    The retain partner is redrawn every epoch (:class:`PairedItems`, :func:`retain_partner`), so
    the retain term sees the whole retain set over a run, as in TOFU and open-unlearning, where
    a partner is drawn on every access. The template answer (a refusal) is drawn once per run
    with a generator seeded by ``seed``: ``npo`` and ``idk_dpo`` cache the reference model's
    log-probability of each item's template before training, which a redraw would invalidate.
    """
    if not task.forget:
        raise DataError(f"task {task.name!r} has an empty forget split: nothing to unlearn")
    if method.uses_retain and not task.retain:
        raise DataError(f"method {method.name!r} needs a retain split, and task {task.name!r} has none")
    if method.uses_template and not task.templates:
        raise DataError(f"method {method.name!r} needs template answers (refusals), and task {task.name!r} has none")
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for i, rec in enumerate(task.forget):
        item: dict[str, Any] = {"index": i, "forget": encode_record(formatter, rec, max_length)}
        if method.uses_template:
            template = task.templates[rng.randrange(len(task.templates))]
            if not isinstance(rec, QA):
                raise DataError(f"method {method.name!r} pairs questions with template answers; its forget split must hold QA records")
            item["template"] = encode_record(formatter, rec, max_length, answer=template)
        items.append(item)
    warn_truncated([it["forget"] for it in items], "forget")
    if method.uses_retain:
        return PairedItems(items, task.retain, formatter, max_length, seed)
    return items


@dataclass
class UnlearnResult:
    """The unlearned model and what training did."""

    model: Any
    train: TrainResult
    method: UnlearnMethod
    extra: dict[str, Any] = field(default_factory=dict)


def train_method(
    model: Any,
    tokenizer: Any,
    task: UnlearningTask,
    method: UnlearnMethod,
    train_cfg: TrainConfig,
    *,
    formatter: PromptFormatter | None = None,
    lora: LoraOptions | None = None,
    stop: StopOptions | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    final_checkpoint: bool = True,
) -> UnlearnResult:
    """Unlearn ``task.forget`` from ``model`` in place with ``method``; return the result.

    The engine under :func:`obliviate.runs.run_unlearn` (which validates options, merges the method's
    ``train_defaults``, copies the caller's model and writes the run record). The model object given
    here is trained in place.
    ``final_checkpoint`` is passed to :func:`obliviate.training.train` (off when the caller saves
    the model right after).
    """
    import torch

    formatter = formatter or PromptFormatter(tokenizer)
    lora = lora or LoraOptions()
    stop = stop or StopOptions()
    items = build_items(task, formatter, method, train_cfg.max_length, train_cfg.seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else formatter.end_id
    collate_items = make_collate(pad)
    reference: dict[str, Any] = {}

    def make_reference() -> Any:
        if "model" not in reference:
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            ref = copy.deepcopy(base).eval()
            for p in ref.parameters():
                p.requires_grad_(False)
            reference["model"] = ref
        return reference["model"]

    if lora.enabled:
        from obliviate.models.lora import apply_lora

        make_reference()  # before LoRA (FILA rewrites the base weights)
        model = apply_lora(model, lora, items=items, collate=collate_items, formatter=formatter)
    ctx = MethodContext(
        model=model,
        tokenizer=tokenizer,
        formatter=formatter,
        task=task,
        items=items,
        collate=collate_items,
        train=train_cfg,
        make_reference=make_reference,
        device=next(model.parameters()).device,
    )
    with torch.no_grad():
        method.prepare(ctx)
    result = train(
        model,
        method.loss,
        items,
        collate_items,
        train_cfg,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        grad_hook=method.grad_hook if method.has_grad_hook else None,
        stop_rule=_stop_rule(stop),
        progress=progress,
        description=f"unlearning ({method.name})",
        final_checkpoint=final_checkpoint,
    )
    model = method.finalize(model, ctx)
    if lora.enabled and lora.save == "merged" and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    reference.clear()
    return UnlearnResult(model, result, method, _diagnostics(ctx.extra))


def _diagnostics(extra: dict[str, Any]) -> dict[str, Any]:
    """The numbers and names a method left in ``ctx.extra`` (RMU's steering coefficient, WAGLE's
    kept fraction), as plain data for the run record; tensors and other objects are left out."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if hasattr(value, "numel") and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool | int | float | str):
            out[key] = value
    return out


def _stop_rule(stop: StopOptions) -> Any:
    def rule(logs: dict[str, float]) -> str | None:
        f = logs.get("forget_nll")
        r = logs.get("retain_nll")
        if stop.forget_loss_above and f is not None and f >= stop.forget_loss_above:
            return f"stopped: forget NLL {f:.3f} reached the target {stop.forget_loss_above}"
        if stop.retain_loss_below and r is not None and r > stop.retain_loss_below:
            return f"stopped: retain NLL {r:.3f} passed the ceiling {stop.retain_loss_below}"
        return None

    return rule
