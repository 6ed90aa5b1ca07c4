"""The behaviour check every registered training-based method must pass on the tiny model.

Import :func:`check_forgets` from a parametrised test::

    @pytest.mark.parametrize("name", METHODS.names())
    def test_forgets(name, tiny_trained):
        check_forgets(name, tiny_trained.state, tiny_trained.tokenizer, tiny_trained.task)

Starting from the tiny model fine-tuned on the fictional facts, a method run with its own
``train_defaults`` (learning rate times :data:`TINY_LR_SCALE`) must raise the mean forget answer
NLL by at least :data:`MIN_FORGET_RISE` nats per token; a method with a retain term must raise the
retain NLL by less than half as much (:data:`RETAIN_RATIO`).

The check needs a model that knows the facts well (forget NLL below :data:`MAX_KNOWN_NLL` nats per
token): SimNPO's log-sigmoid saturates once the per-token NLL exceeds about 1/β, and in a
half-trained model forget and retain answers are still one blur, so no method can separate them.
The ``train_defaults`` of ga, grad_diff, kl, npo, simnpo, idk_sft and idk_dpo were tuned on the
session fixture ``tiny_trained`` (20 people, forget NLL 0.031, retain NLL 0.033) and checked on
another tiny model (forget NLL 0.084, retain 0.131) and on SmolLM2-135M. When retain partners
became a fresh draw every epoch (the retain term now sees ~3.6x more distinct retain items),
simnpo and idk_dpo kept retain better but forgot about half as much in the same steps (forget
NLL rise 1.33 -> 0.66 and 1.21 -> 0.60); their learning rates went from 8e-5 and 9e-5 to 1.5e-4
(rise 1.14 and 1.37, retain/forget ratio 0.43 and 0.41).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

MIN_FORGET_RISE = 1.0
"""Nats per token the mean forget answer NLL must rise by."""

MAX_KNOWN_NLL = 0.5
"""The starting model must know the forget facts: mean forget answer NLL below this."""

RETAIN_RATIO = 0.5
"""Largest allowed (retain NLL rise) / (forget NLL rise) for a method with a retain term."""

RETAIN_RATIO_EXCEPTIONS = {"idk_sft": 0.75, "idk_dpo": 0.6}
"""Methods whose retain damage on this tiny task is structurally larger, with their bound.

``idk_sft`` teaches refusals ("I'm not sure...") whose first tokens spread to every question about
a person in a model of this size: over a dozen learning rates, batch sizes, schedules and both
poolings, on two tiny models, its retain rise was 0.45-0.67 of its forget rise, never reliably
below 0.5.

``idk_dpo`` is the same refusal signal as a preference: its ratio sits at the 0.5 line (0.53 with
fused AdamW, below 0.5 with torch's looped AdamW on the same data, a rounding-level difference
that the chaotic few-step trajectory amplifies), so it gets a bound of 0.6.
"""

TINY_LR_SCALE = 15.0
"""Factor from a method's ``train_defaults`` learning rate to the tiny model's.

``train_defaults`` are set for SmolLM2-135M-sized models. The tiny model needs a learning rate
about 15 times larger to change what it knows at the same speed: ``obliviate prepare`` fine-tunes it
at 3e-3 against 2e-4 for SmolLM2-135M.
"""

RETAIN_EVAL_ITEMS = 40
"""Retain items scored before and after (the first ones of the split)."""

MAX_LENGTH = 96
"""Token limit of training and scoring examples on the tiny model."""


@dataclass
class Behaviour:
    """Mean answer NLL (nats per token) of forget and retain items before and after unlearning."""

    forget_before: float
    forget_after: float
    retain_before: float
    retain_after: float
    seconds: float
    steps: int
    stopped: str

    @property
    def forget_rise(self) -> float:
        return self.forget_after - self.forget_before

    @property
    def retain_rise(self) -> float:
        return self.retain_after - self.retain_before


def mean_answer_nll(model: Any, tokenizer: Any, records: list[Any], formatter: Any = None) -> float:
    """Mean over QA records of each answer's mean per-token NLL (one batched forward pass)."""
    import torch

    from obliviate.data.formatting import PromptFormatter, collate, encode_record
    from obliviate.methods.base import forward_logits
    from obliviate.methods.losses import answer_lengths, sequence_nll

    formatter = formatter or PromptFormatter(tokenizer)
    batch = collate([encode_record(formatter, r, MAX_LENGTH) for r in records], tokenizer.pad_token_id)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits, labels = forward_logits(model, batch)
        per_item = sequence_nll(logits, labels) / answer_lengths(labels).clamp(min=1)
    model.train(was_training)
    return float(per_item.mean())


def run_method(
    name: str,
    model_state: dict[str, Any],
    tokenizer: Any,
    task: Any,
    options: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
) -> Behaviour:
    """Unlearn ``task`` from a fresh tiny model holding ``model_state`` with method ``name``.

    Training uses the method's ``train_defaults`` (learning rate times :data:`TINY_LR_SCALE`) with
    bf16 off and ``max_length`` 96, then ``train`` overrides.
    """
    from obliviate.config import build
    from obliviate.methods.base import METHODS, resolve_method
    from obliviate.models import load_model
    from obliviate.training.loop import TrainConfig
    from obliviate.unlearning import train_method

    model = load_model("tiny").model
    model.load_state_dict(model_state)
    retain_eval = task.retain[:RETAIN_EVAL_ITEMS]
    f0 = mean_answer_nll(model, tokenizer, task.forget)
    r0 = mean_answer_nll(model, tokenizer, retain_eval)
    method = resolve_method(name, options)
    defaults = dict(METHODS.get(name).train_defaults)
    if "lr" in defaults:
        defaults["lr"] = defaults["lr"] * TINY_LR_SCALE
    settings = {**defaults, "bf16": "off", "max_length": MAX_LENGTH, **(train or {})}
    start = time.perf_counter()
    result = train_method(model, tokenizer, task, method, build(TrainConfig, settings, "train"), progress=False)
    seconds = time.perf_counter() - start
    f1 = mean_answer_nll(result.model, tokenizer, task.forget)
    r1 = mean_answer_nll(result.model, tokenizer, retain_eval)
    return Behaviour(f0, f1, r0, r1, seconds, result.train.steps, result.train.stopped)


def check_forgets(name: str, model_state: dict[str, Any], tokenizer: Any, task: Any) -> Behaviour:
    """Fail unless method ``name`` forgets (forget NLL +1 nat) and, with a retain term, keeps retain.

    A method with a retain term (``uses_retain``) must raise the retain NLL by less than
    :data:`RETAIN_RATIO` (or its entry in :data:`RETAIN_RATIO_EXCEPTIONS`) times the forget NLL's
    rise. Returns the measurements for further checks.
    """
    from obliviate.methods.base import METHODS

    b = run_method(name, model_state, tokenizer, task)
    assert b.forget_before < MAX_KNOWN_NLL, (
        f"the starting model has not memorised the forget facts (forget NLL {b.forget_before:.3f} >= "
        f"{MAX_KNOWN_NLL}): fine-tune the fixture longer; unlearning a half-learned fact measures nothing"
    )
    summary = (
        f"{name}: forget NLL {b.forget_before:.3f} -> {b.forget_after:.3f}, retain NLL "
        f"{b.retain_before:.3f} -> {b.retain_after:.3f} in {b.steps} steps, {b.seconds:.1f} s ({b.stopped})"
    )
    assert b.forget_rise >= MIN_FORGET_RISE, f"did not forget enough: {summary}"
    if METHODS.get(name).uses_retain:
        bound = RETAIN_RATIO_EXCEPTIONS.get(METHODS.canonical(name), RETAIN_RATIO)
        assert b.retain_rise < bound * b.forget_rise, f"retain NLL rose too much: {summary}"
    return b
