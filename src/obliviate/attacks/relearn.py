"""Relearning attack: fine-tune a copy of the model on a little data, then score
the forget set again.

Knowledge that unlearning only suppressed comes back after a few fine-tuning steps, on a few of
the forgotten items (Hu et al., "Jogging the Memory of Unlearned LLMs Through Targeted Relearning
Attacks", arXiv 2406.13356; ICLR 2025) or even on unrelated data (Doshi and Stickland, "Does
Unlearning Truly Unlearn? A Black Box Evaluation of LLM Unlearning Methods", arXiv 2411.12103).

Two sources of training data (``--relearn.data``):

- ``forget``: a seeded subset (``fraction`` of the forget items, at most ``max_items``) is
  trained on, and only the *held-back* forget items are scored: what comes back there was not
  taught again, it was still in the weights;
- ``retain``: retain items only (data the model is meant to keep), and every forget item is
  scored.

The recipe is the reference relearning config of SimNPO's WMDP code
(``Unlearn-Simple:WMDP/configs/unlearn/wmdp/Relearn+Forget.json``): plain causal-LM fine-tuning,
100 optimizer steps of 4 examples (batch 1 x 4 accumulation there; 4 per step here), AdamW at
lr 1e-5, no weight decay, warm-up a tenth of the steps; its optional LoRA path (r 8, alpha 32,
q/v projections, dropout 0.05) is ``--relearn.lora true``. Two differences, both stated in the
run record: the items are question-answer pairs whose loss covers the answer tokens (the
reference trains on 512-token documents, padding included), and the subset is drawn from the
whole forget split rather than a fixed pool of 500 documents. Training runs through obliviate's
one training loop on a deep copy; the model under attack is never changed.

The retain-only model gets the same attack (same subset, same steps): it shows how much of the
"recovery" is plain learning from the relearning data, which is the baseline the verdict uses.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from obliviate.attacks.base import Attack, AttackContext, Attacked, with_forget
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError


@dataclass
class RelearnConfig:
    """Options of the relearning attack (``--relearn.<field>``)."""

    data: Literal["forget", "retain"] = "forget"  # train on a subset of the forget items (the held-back rest is scored) or on retain items only
    fraction: float = 0.5  # share of the forget items trained on when data is forget (the rest is held back and scored)
    max_items: int = 100  # at most this many training items (0: no cap)
    steps: int = 100  # optimizer steps (the reference: max_steps 100)
    lr: float = 1e-5  # AdamW learning rate (the reference: 1e-5; with lora, 1e-4 is usual)
    batch_size: int = 4  # examples per optimizer step (the reference: batch 1 x grad_accum 4)
    warmup: float = 0.1  # warm-up, a fraction of the steps (the reference: max(1, steps / 10))
    max_length: int = 256  # longest tokenized example
    bf16: Literal["auto", "on", "off"] = "auto"  # bf16 autocast while training (the reference: bf16)
    lora: bool = False  # train LoRA adapters (r 8, alpha 32, q/v, dropout 0.05, as the reference's LoRA path) instead of all weights

    def validate(self) -> None:
        """Raise ConfigError on values that cannot work, before any model loads."""
        if self.data not in ("forget", "retain"):
            raise ConfigError(f"relearn.data must be forget or retain, got {self.data!r}")
        if not 0.0 < self.fraction < 1.0:
            raise ConfigError(
                "relearn.fraction is the share of forget items trained on, strictly between 0 "
                f"and 1 (some must be held back to score), got {self.fraction}"
            )
        for name in ("steps", "batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"relearn.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_items < 0:
            raise ConfigError(f"relearn.max_items must be 0 (no cap) or more, got {self.max_items}")
        if not 0 < self.lr < float("inf"):
            raise ConfigError(f"relearn.lr must be a finite number greater than 0, got {self.lr}")
        if not 0.0 <= self.warmup < 1.0:
            raise ConfigError(
                f"relearn.warmup is a fraction of the steps in [0, 1), got {self.warmup}"
            )


def relearn_split(
    task: UnlearningTask, cfg: RelearnConfig, seed: int
) -> tuple[list[Any], list[Any]]:
    """The items trained on and the forget items held back (scored), drawn with ``seed``.

    The draw depends only on the seed and the items' ids, so the unlearned and the retain-only
    model are attacked with the same subset.
    """
    forget = sorted(task.forget, key=lambda r: r.id)
    rng = random.Random(f"relearn:{seed}:{cfg.data}")
    if cfg.data == "retain":
        pool = sorted(task.retain, key=lambda r: r.id)
        n = min(len(pool), cfg.max_items) if cfg.max_items else len(pool)
        return rng.sample(pool, n), list(task.forget)
    n = max(1, min(len(forget) - 1, round(cfg.fraction * len(forget))))
    if cfg.max_items:
        n = min(n, cfg.max_items)
    chosen = {r.id for r in rng.sample(forget, n)}
    return [r for r in task.forget if r.id in chosen], [
        r for r in task.forget if r.id not in chosen
    ]


class Relearn(Attack):
    """Fine-tune a copy on a few forget items (or retain text); score the held-back forget items."""

    name: ClassVar[str] = "relearn"
    kind: ClassVar[str] = "weights"
    config_cls: ClassVar[type] = RelearnConfig

    @property
    def label(self) -> str:
        return "relearn" if self.config.data == "forget" else "relearn-retain"

    def check(self, task: UnlearningTask) -> None:
        if self.config.data == "forget" and len(task.forget) < 2:
            raise ConfigError(
                "relearn on forget data trains on some forget items and scores the others: task "
                f"{task.name!r} has {len(task.forget)} forget item(s), and needs at least 2 (or "
                "use --relearn.data retain)"
            )
        if self.config.data == "retain" and not task.retain:
            raise ConfigError(
                f"relearn.data retain needs retain items, and task {task.name!r} has none"
            )
        if not task.forget:
            raise ConfigError(
                f"attack 'relearn' needs forget items, and task {task.name!r} has none"
            )

    def apply(self, ctx: AttackContext) -> Attacked:
        from obliviate.data.formatting import make_collate, sft_items
        from obliviate.methods.base import sft_loss
        from obliviate.training.loop import TrainConfig, train

        cfg = self.config
        trained_on, held = relearn_split(ctx.task, cfg, ctx.seed)
        lm = ctx.model
        model = copy.deepcopy(lm.model)
        model.train()
        for p in model.parameters():
            p.requires_grad_(True)
        if cfg.lora:
            from obliviate.models.lora import LoraOptions, apply_lora

            model = apply_lora(
                model,
                LoraOptions(
                    enabled=True, r=8, alpha=32, dropout=0.05, targets=("q_proj", "v_proj")
                ),
            )
        formatter = lm.formatter(ctx.prompt_format)
        items = sft_items(trained_on, formatter, cfg.max_length)
        pad = (
            lm.tokenizer.pad_token_id
            if lm.tokenizer.pad_token_id is not None
            else lm.tokenizer.eos_token_id
        )
        tcfg = TrainConfig(
            lr=cfg.lr,
            max_steps=cfg.steps,
            batch_size=cfg.batch_size,
            warmup=cfg.warmup,
            weight_decay=0.0,
            schedule="linear",
            bf16=cfg.bf16,
            seed=ctx.seed,
            max_length=cfg.max_length,
        )
        result = train(model, sft_loss, items, make_collate(pad), tcfg, progress=ctx.progress,
                       description=f"relearning ({ctx.role})", final_checkpoint=False)
        if result.diverged:
            raise ConfigError(
                f"relearning the {ctx.role} model diverged ({result.stopped}); lower --relearn.lr"
            )
        if cfg.lora:
            model = model.merge_and_unload()
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        relearned = dataclasses.replace(lm, model=model, source=f"{lm.source} + relearn", path=None)
        task = with_forget(ctx.task, held, "relearn-held") if cfg.data == "forget" else ctx.task
        nll = [row["nll"] for row in result.log if "nll" in row]
        details = {
            "data": cfg.data,
            "trained_on": sorted(r.id for r in trained_on),
            "scored": len(held),
            "steps": result.steps,
            "bf16": result.bf16,
            "attention": result.attention,
            "seconds": round(result.seconds, 3),
            "nll_first": nll[0] if nll else None,
            "nll_last": nll[-1] if nll else None,
            "recipe": (
                "SimNPO WMDP Relearn+Forget (QA answer loss; subset from the whole forget split)"
            ),
        }
        return Attacked(relearned, task, items=[r.id for r in held], details=details)
