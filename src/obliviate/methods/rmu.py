"""RMU: Representation Misdirection for Unlearning.

Li et al. 2024, "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning"
(arXiv:2403.03218), official code ``centerforaisafety/wmdp`` ``rmu/unlearn.py``.

On forget inputs, the output of decoder block ℓ is steered towards a fixed random control vector
u = c·r/‖r‖ (r ~ U[0,1)^d); on retain inputs it is kept equal to that of a frozen copy of the
model: L = MSE(h_θ(x_f), u) + α·MSE(h_θ(x_r), h_frozen(x_r))
(:func:`obliviate.methods.losses.rmu_loss`). Only a few weights are trained: the parameters
matching ``param_pattern`` in blocks ``layer_ids``; every other parameter keeps its value.

Official settings (Zephyr-7B, 32 blocks): ``layer_id`` 7, ``layer_ids`` 5,6,7, ``param_ids`` 6
(= ``mlp.down_proj.weight``), c = 20 and α = 100 in the script's arguments, c = 6.5 and α = 1200
for the released Zephyr model, lr 5e-5, batch 4, 80-150 batches.

Our defaults, and why they differ:

* Blocks around the middle whatever the depth: ``layer_id`` = n_blocks // 2 and ``layer_ids`` the
  min(3, max(1, layer_id)) blocks ending there (13,14,15 of SmolLM2's 30 blocks; 1,2 of tiny's 4).
* c is scaled to the model (``steering_coeff`` 0): 8 × the frozen model's mean activation norm at
  block ℓ on forget answer tokens. c only works relative to that norm (WMDP's 6.5 suits Zephyr's
  layer 7, Yi-34B needed 300); on small models a fixed c = 20 can be below that norm and would
  shrink activations rather than misdirect them. Set ``steering_coeff`` for a
  fixed c. α = 10 goes with this scale (the forget MSE grows with c²).
* ``mask`` true: the MSE averages over answer tokens only (open-unlearning). The original
  (``mask: false``) averages over every position, padding and the first token included; on
  models with a massive first-token activation (SmolLM2 has one) that term dominates
  the loss, and the first position is identical in forget and retain inputs, so the two terms
  fight over it.
* ``retain_stream`` true: each step's retain batch is drawn from the whole retain set, as WMDP
  reads its own retain corpus independently of the forget corpus, instead of the retain items
  paired once with the forget items (which cover only as many retain items as there are forget
  items).
* The forget texts are the forget set's question + answer sequences (WMDP uses a raw corpus),
  with one control vector for the whole forget set (WMDP keeps one per topic).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from obliviate.data.formatting import IGNORE_INDEX, batches, encode_record, to_device
from obliviate.errors import ConfigError
from obliviate.methods.base import LossOutput, MethodContext, UnlearnMethod
from obliviate.methods.losses import mean_nll, rmu_control_vector, rmu_loss
from obliviate.models.structure import decoder_blocks
from obliviate.types import Batch, Model

if TYPE_CHECKING:
    from torch import Tensor
    from torch.nn import Module, Parameter


@dataclass
class RMUConfig:
    """Options of RMU."""

    layer_id: int = -1  # decoder block whose output is steered (-1: n_blocks // 2; official 7)
    layer_ids: tuple[int, ...] = ()  # blocks whose matching parameters are trained (empty: up to 3 blocks ending at layer_id; official 5,6,7)
    param_pattern: str = r"mlp\.down_proj"  # regex searched in parameter names inside those blocks (official param_ids 6 = mlp.down_proj.weight)
    steering_coeff: float = 0.0  # c, the control vector's norm; 0: steering_scale × the frozen mean norm of block ℓ's output on forget answers (official fixed c: 20, Zephyr 6.5)
    steering_scale: float = 8.0  # with steering_coeff 0: c as a multiple of that mean activation norm
    alpha: float = 10.0  # α, weight of the retain activation MSE (official 100 with c = 20, 1200 with c = 6.5, on Zephyr's activation scale)
    mask: bool = True  # MSE over answer tokens only (open-unlearning); false: every position, padding included (original WMDP)
    retain_stream: bool = True  # draw each step's retain batch from the whole retain set (WMDP's own retain stream); false: the items paired with the forget batch

    def validate(self) -> None:
        """Reject values that cannot work, before a model is loaded."""
        if self.steering_coeff < 0:
            raise ConfigError(
                "method.steering_coeff must be > 0 (or 0: scale it to the model), "
                f"got {self.steering_coeff}"
            )
        if self.steering_coeff == 0 and self.steering_scale <= 0:
            raise ConfigError(
                f"method.steering_scale must be > 0, got {self.steering_scale}; the default is 8"
            )
        if self.alpha < 0:
            raise ConfigError(f"method.alpha must be >= 0, got {self.alpha}; the default is 10")
        if self.layer_id < -1:
            raise ConfigError(
                f"method.layer_id must be a block index or -1 (middle), got {self.layer_id}"
            )
        try:
            re.compile(self.param_pattern)
        except re.error as e:
            raise ConfigError(
                f"method.param_pattern {self.param_pattern!r} is not a "
                f"valid regular expression: {e}"
            ) from None


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the wanted activation is captured."""


def default_layers(
    n_blocks: int, layer_id: int, layer_ids: tuple[int, ...]
) -> tuple[int, tuple[int, ...]]:
    """Resolve the steered block and the trained blocks (auto values around the middle)."""
    layer = n_blocks // 2 if layer_id == -1 else layer_id
    if not 0 <= layer < n_blocks:
        raise ConfigError(
            f"method.layer_id {layer_id} is out of range: the model has {n_blocks} "
            f"blocks (0..{n_blocks - 1})"
        )
    if not layer_ids:
        k = min(3, max(1, layer))
        layer_ids = tuple(range(layer - k + 1, layer + 1))
    bad = [i for i in layer_ids if not 0 <= i <= layer]
    if bad:
        raise ConfigError(
            f"method.layer_ids {bad} must lie in 0..{layer}: blocks after the steered block "
            f"{layer} do not change its output, so training them would do nothing"
        )
    return layer, tuple(layer_ids)


def block_output(
    model: Model, block: Module, part: Batch, *, stop: bool = False
) -> tuple[Tensor, Any]:
    """Run ``model`` on a batch part; return (output of ``block``, model output or
    None if stopped)."""
    captured: list[Tensor] = []

    def hook(module: Any, args: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)
        if stop:
            raise _Stop

    handle = block.register_forward_hook(hook)
    try:
        out = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"])
    except _Stop:
        out = None
    finally:
        handle.remove()
    return captured[0], out


class RMU(UnlearnMethod):
    """Trains only the chosen blocks, against a random control vector and a frozen copy."""

    name: ClassVar[str] = "rmu"
    config_cls: ClassVar[type] = RMUConfig
    uses_retain: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 1.5e-3, "epochs": 10.0, "batch_size": 8}

    def __init__(self, config: RMUConfig) -> None:
        super().__init__(config)
        self.control: Tensor | None = None
        self.coeff: float = 0.0  # the control vector's norm c, resolved in prepare
        self.layer: int = -1
        self.layer_ids: tuple[int, ...] = ()
        self.trained: list[str] = []
        self._block: Any = None
        self._frozen: Model | None = None
        self._frozen_block: Any = None
        self._was_trainable: list[Parameter] = []
        self._retain_items: list[dict[str, Any]] = []
        self._collate: Any = None
        self._seed = 0

    def prepare(self, ctx: MethodContext) -> None:
        """Pick the blocks, freeze every other parameter, draw u, and make the frozen copy."""
        import torch

        blocks = decoder_blocks(ctx.model)
        self.layer, self.layer_ids = default_layers(
            len(blocks), self.config.layer_id, self.config.layer_ids
        )
        pattern = re.compile(self.config.param_pattern)
        chosen = {
            id(p): f"layers.{i}.{name}"
            for i in self.layer_ids
            for name, p in blocks[i].named_parameters()
            if p.requires_grad and pattern.search(name)
        }
        if not chosen:
            names = ", ".join(name for name, _ in blocks[self.layer].named_parameters())
            raise ConfigError(
                f"method.param_pattern {self.config.param_pattern!r} matches no trainable "
                f"parameter in blocks {list(self.layer_ids)}; parameter names in a block: {names}"
            )
        self.trained = sorted(chosen.values())
        self._was_trainable = [p for p in ctx.model.parameters() if p.requires_grad]
        for p in self._was_trainable:
            p.requires_grad_(id(p) in chosen)
        hidden = getattr(getattr(ctx.model, "config", None), "hidden_size", None)
        if not hidden:
            raise ConfigError(
                f"{type(ctx.model).__name__} has no config.hidden_size; RMU needs it "
                "to draw the control vector"
            )
        self._block = blocks[self.layer]
        self._frozen = ctx.make_reference()
        self._frozen_block = decoder_blocks(self._frozen)[self.layer]
        self.coeff = self.config.steering_coeff or self.config.steering_scale * self._forget_norm(
            ctx
        )
        ctx.extra["rmu_steering_coeff"] = self.coeff
        generator = torch.Generator().manual_seed(ctx.train.seed)
        self.control = rmu_control_vector(int(hidden), self.coeff, generator).to(ctx.device)
        if self.config.retain_stream:
            self._retain_items = [
                {"retain": encode_record(ctx.formatter, r, ctx.train.max_length)}
                for r in ctx.task.retain
            ]
            self._collate, self._seed = ctx.collate, ctx.train.seed

    def _forget_norm(self, ctx: MethodContext) -> float:
        """Mean L2 norm of the frozen block-ℓ output over the forget answer tokens."""
        import torch

        total, count = 0.0, 0
        with torch.no_grad():
            for batch in batches(ctx.items, ctx.collate, ctx.train.batch_size):
                part = to_device(batch["forget"], ctx.device)
                h, _ = block_output(self._frozen, self._frozen_block, part, stop=True)
                answer = part["labels"] != IGNORE_INDEX
                total += float(h.float().norm(dim=-1)[answer].sum())
                count += int(answer.sum())
        if count == 0:
            raise ConfigError(
                "the forget items have no answer tokens; RMU cannot scale its control vector "
                "(set method.steering_coeff)"
            )
        return total / count

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """Forget MSE to u plus α times the retain MSE to the frozen activations."""
        import torch

        if self.control is None:
            raise ConfigError("rmu.loss ran before prepare: call prepare(ctx) first")
        forget, retain = batch["forget"], self._retain_batch(batch)
        h_forget, out_f = block_output(model, self._block, forget)
        h_retain, out_r = block_output(model, self._block, retain)
        with torch.no_grad():
            h_frozen, _ = block_output(self._frozen, self._frozen_block, retain, stop=True)
        masks = (
            (forget["labels"] != IGNORE_INDEX, retain["labels"] != IGNORE_INDEX)
            if self.config.mask
            else (None, None)
        )
        total, forget_term, retain_term = rmu_loss(
            h_forget,
            self.control,
            h_retain,
            h_frozen,
            self.config.alpha,
            mask_forget=masks[0],
            mask_retain=masks[1],
        )
        logs = {
            "rmu_forget": float(forget_term.detach()),
            "rmu_retain": float(retain_term.detach()),
            "forget_nll": float(mean_nll(out_f.logits[:, :-1].detach(), forget["labels"][:, 1:])),
            "retain_nll": float(mean_nll(out_r.logits[:, :-1].detach(), retain["labels"][:, 1:])),
        }
        return LossOutput(total, logs)

    def _retain_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The step's retain inputs: the paired ones, or a draw from the whole retain set.

        The draw is seeded by the run's seed and the forget batch's item indices, so it changes
        from epoch to epoch (as batches are reshuffled) and a resumed run repeats it exactly.
        """
        if not self._retain_items:
            return batch["retain"]
        indices = sorted(int(i) for i in batch["index"])
        rng = random.Random(f"rmu/{self._seed}/{indices}")
        chosen = rng.sample(
            range(len(self._retain_items)), min(len(indices), len(self._retain_items))
        )
        part = self._collate([self._retain_items[j] for j in chosen])["retain"]
        return to_device(part, batch["forget"]["input_ids"].device)

    def finalize(self, model: Model, ctx: MethodContext) -> Model:
        """Make trainable again the parameters ``prepare`` froze, and drop the frozen copy."""
        for p in self._was_trainable:
            p.requires_grad_(True)
        self._was_trainable = []
        self._frozen = self._frozen_block = None
        self._retain_items = []
        return model
