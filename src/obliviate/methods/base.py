"""The unlearning-method interface and its registry.

A training-based method is a config dataclass plus a subclass of :class:`UnlearnMethod` with:

- ``prepare(ctx)``: one-off work before training (reference log-probabilities, LoRA init,
  gradient masks, control vectors), given a :class:`MethodContext`;
- ``loss(model, batch) -> LossOutput``: the objective, built from pure functions in
  :mod:`obliviate.methods.losses`;
- optionally ``grad_hook(model)`` (masks applied to gradients before each optimizer step) and
  ``finalize(model, ctx)`` (post-training transforms such as task-vector negation).

The one training loop (:func:`obliviate.training.train`) runs every method. A batch is a dict:
``batch["forget"]``, ``batch["retain"]`` and ``batch["template"]`` each hold ``input_ids``,
``attention_mask`` and ``labels`` (answer-only labels, -100 elsewhere); ``batch["index"]`` holds
the forget items' positions in the forget set (for cached reference values). ``retain`` and
``template`` are present only when the method declares it uses them (``uses_retain`` and
``uses_template``, read from the method instance, so a wrapper can declare its base's needs).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from obliviate.config import build
from obliviate.data.formatting import PromptFormatter
from obliviate.data.task import UnlearningTask
from obliviate.methods import METHODS
from obliviate.training.loop import LossOutput, TrainConfig
from obliviate.types import Batch, Model, Tokenizer

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["METHODS", "LossOutput", "MethodContext", "UnlearnMethod", "resolve_method"]


@dataclass
class MethodContext:
    """What ``prepare`` may use.

    Attributes:
        model: the model being unlearned (already wrapped with LoRA when LoRA is on).
        tokenizer: its tokenizer.
        formatter: the prompt format used to build the batches.
        task: the unlearning task.
        items: the encoded training items (one per forget item, paired as the loop will see them).
        collate: turns a list of items into a batch.
        train: the optimisation settings.
        make_reference: returns a frozen copy of the model as it was before unlearning (created
            on first call, cached).
        device: where the model lives.
        extra: free room for methods to share state with ``finalize``.
    """

    model: Model
    tokenizer: Tokenizer
    formatter: PromptFormatter
    task: UnlearningTask
    items: list[Any]
    collate: Callable[[list[Any]], dict[str, Any]]
    train: TrainConfig
    make_reference: Callable[[], Model]
    device: Any = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)


class UnlearnMethod(abc.ABC):
    """Base class of training-based unlearning methods (one level of inheritance at most)."""

    name: ClassVar[str] = ""  # the name it is registered under in obliviate.methods.METHODS
    config_cls: ClassVar[type] = object
    uses_retain: ClassVar[bool] = False  # batches carry a retain item paired with each forget item
    uses_template: ClassVar[bool] = False  # batches carry the forget question with a template (refusal) answer
    train_defaults: ClassVar[dict[str, float]] = {}  # TrainConfig values this method prefers (user options win)

    def __init__(self, config: Any) -> None:
        self.config = config

    def prepare(self, ctx: MethodContext) -> None:  # noqa: B027 (an optional hook: nothing by default)
        """One-off work before training (default: nothing)."""

    @abc.abstractmethod
    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """The scalar to minimise on one batch, and named floats to log."""

    def grad_hook(self, model: Model) -> None:  # noqa: B027 (an optional hook: nothing by default)
        """Called on gradients before each optimizer step (default: nothing)."""

    has_grad_hook: ClassVar[bool] = False

    def finalize(self, model: Model, ctx: MethodContext) -> Model:
        """Transform the model after training (default: unchanged)."""
        return model


def forward_logits(
    model: Model, part: Batch, *, answers_only: bool = False
) -> tuple[Tensor, Tensor]:
    """Run the model on one part of a batch; return logits and labels shifted to align.

    With ``answers_only`` (for losses that read only counted answer positions: NLLs, sequence
    log-probabilities) the output head runs from the batch's earliest counted position on
    (``logits_to_keep``) and the labels are cut to match, so prompt positions cost neither the head
    nor the vocabulary softmax; the values at answer positions are the same. Every position is
    computed when the model does not take ``logits_to_keep`` or nothing would be saved.
    """
    labels = part["labels"]
    keep = answer_window(model, labels) if answers_only else 0
    # A part with ``inputs_embeds`` carries the outputs of fixed lowest blocks, run once
    # (:mod:`obliviate.training.prefix`); the model then bypasses those blocks.
    inputs = (
        {"inputs_embeds": part["inputs_embeds"], "use_cache": False}
        if "inputs_embeds" in part
        else {"input_ids": part["input_ids"]}
    )
    if keep:
        out = model(**inputs, attention_mask=part["attention_mask"], logits_to_keep=keep)
        return out.logits[:, :-1], labels[:, labels.shape[1] - keep + 1 :]
    out = model(**inputs, attention_mask=part["attention_mask"])
    return out.logits[:, :-1], labels[:, 1:]


def answer_window(model: Model, labels: Tensor) -> int:
    """The ``logits_to_keep`` that covers every counted label of ``labels`` (0: keep all positions).

    Aligned position j predicts label j + 1, so from the first column holding a counted label at
    1 + j, the head must run on positions j .. T - 1 (the last one is dropped by the shift).
    """
    from obliviate.data.formatting import IGNORE_INDEX
    from obliviate.models.structure import takes_logits_to_keep

    counted = (labels[:, 1:] != IGNORE_INDEX).any(dim=0)
    if not bool(counted.any()) or not takes_logits_to_keep(model):
        return 0
    first = int(counted.nonzero()[0])
    keep = labels.shape[1] - first
    return keep if first > 0 else 0


def sft_loss(model: Model, batch: dict[str, Any]) -> LossOutput:
    """Mean answer NLL on ``batch["forget"]`` (the loss of plain fine-tuning)."""
    from obliviate.methods.losses import mean_nll

    logits, labels = forward_logits(model, batch["forget"], answers_only=True)
    loss = mean_nll(logits, labels)
    return LossOutput(loss, {"nll": float(loss.detach())})


def resolve_method(name: str, options: dict[str, Any] | None = None) -> UnlearnMethod:
    """Look up a method and build its config from options (fails fast on a typo)."""
    cls = METHODS.get(name)
    config = build(cls.config_cls, options or {}, where="method", owner=f"method {cls.name}")
    return cls(config)
