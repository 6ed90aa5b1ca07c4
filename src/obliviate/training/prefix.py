"""A frozen prefix run once: fine-tuning that skips the fixed lowest blocks' forward pass.

When a fine-tune keeps the embedding and the lowest ``n`` decoder blocks fixed (``obliviate
prepare --freeze_layers``), what enters block ``n`` depends only on the example, never on the
step: the same hidden states are recomputed at every step of every epoch, and again for the
second model trained from the same base. :class:`FrozenPrefix` computes them once per distinct
example (no gradient, under the training's autocast), and during training the batch carries them
as ``inputs_embeds`` while the lowest ``n`` blocks pass their input through (:meth:`skipping`).
The upper blocks, the final norm and the head then compute what they computed before, up to
floating-point rounding (the same operations on the same values in a differently padded batch);
the weights, their names and every checkpoint are those of the whole model.

It applies only where it is exact: the embedding and the lowest ``n`` blocks have no trainable
parameter and the model has no active dropout (a dropout draw would differ at every step).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from obliviate.types import Model

if TYPE_CHECKING:
    from torch import Tensor
    from torch.nn import Module

log = logging.getLogger(__name__)

PREFIX_KEY = "forget_prefix"
"""The item key holding an example's cached hidden states (``[tokens, hidden]``, CPU, float32)."""

MAX_BYTES = 2 << 30
"""Keep the cached states under this many bytes (2 GiB); beyond, every step runs the whole model."""


class _Reached(Exception):
    """Raised by the hook on block ``n`` to stop the forward pass once its input is known."""

    def __init__(self, hidden: Tensor) -> None:
        super().__init__()
        self.hidden = hidden


def has_active_dropout(model: Model) -> bool:
    """Whether any dropout of the model draws (an ``nn.Dropout`` or an attention
    dropout above 0)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd) and module.p > 0:
            return True
        p = getattr(module, "attention_dropout", 0.0)
        if isinstance(p, int | float) and p > 0:
            return True
    config = getattr(model, "config", None)
    return any(
        isinstance(getattr(config, name, 0.0), int | float) and getattr(config, name, 0.0) > 0
        for name in (
            "attention_dropout",
            "hidden_dropout",
            "dropout",
            "attn_pdrop",
            "resid_pdrop",
            "embd_pdrop",
        )
    )


def frozen_prefix_blocks(model: Model, n: int) -> int:
    """``n`` when the embedding and the lowest ``n`` blocks are fixed and nothing
    draws dropout, else 0."""
    from obliviate.models.structure import decoder_blocks

    if n <= 0:
        return 0
    try:
        blocks = decoder_blocks(model)
        embedding = model.get_input_embeddings()
    except Exception:  # noqa: BLE001 - any model whose structure we cannot read runs whole
        return 0
    if n >= len(blocks) or embedding is None or has_active_dropout(model):
        return 0
    fixed = [embedding, *blocks[:n]]
    if any(p.requires_grad for m in fixed for p in m.parameters()):
        return 0
    return n


class FrozenPrefix:
    """The hidden states entering block ``n``, per distinct example, and the means to train on them.

    Args:
        n: how many of the lowest decoder blocks are fixed (see :func:`frozen_prefix_blocks`).
        bf16: compute the states under bf16 autocast, as the training that reads them runs.
        max_length: the training's ``train.max_length`` (it picks the attention
            kernel, as in training).
        batch_size: examples per forward pass when computing.
    """

    def __init__(self, n: int, *, bf16: bool, max_length: int, batch_size: int = 16) -> None:
        self.n = n
        self.bf16 = bf16
        # the training's train.max_length: the same attention kernel (training.attention)
        self.max_length = max_length
        self.batch_size = batch_size
        self.states: dict[tuple[int, ...], Tensor] = {}  # input ids -> [tokens, hidden] float32
        self.nbytes = 0
        # the blocks return a tuple (transformers 4.x) rather than the tensor
        self.tuple_output = False

    def attach(
        self, model: Model, items: Sequence[dict[str, Any]], pad_id: int
    ) -> list[dict[str, Any]] | None:
        """``items`` with each one's states under :data:`PREFIX_KEY` (computed where missing), or
        None when they would pass :data:`MAX_BYTES` (train on the plain items then)."""
        missing = {tuple(it["forget"].input_ids) for it in items} - set(self.states)
        hidden = int(
            getattr(model.config, "hidden_size", 0) or model.get_input_embeddings().weight.shape[1]
        )
        need = self.nbytes + sum(len(ids) for ids in missing) * hidden * 4
        if need > MAX_BYTES:
            log.info(
                "not caching the frozen blocks' outputs (%.1f GiB > %.1f GiB)",
                need / 2**30,
                MAX_BYTES / 2**30,
            )
            return None
        self._compute(model, sorted(missing, key=len), pad_id)
        return [{**it, PREFIX_KEY: self.states[tuple(it["forget"].input_ids)]} for it in items]

    def _compute(self, model: Model, sequences: list[tuple[int, ...]], pad_id: int) -> None:
        import torch

        from obliviate.data.formatting import Encoded, collate
        from obliviate.models.precision import bf16_autocast, input_device
        from obliviate.models.structure import decoder_blocks
        from obliviate.training.attention import training_attention

        if not sequences:
            return
        device = input_device(model)

        def stop(module: Module, args: tuple, kwargs: dict) -> None:
            raise _Reached(args[0] if args else kwargs["hidden_states"])

        def shape(module: Module, args: tuple, output: object) -> None:
            self.tuple_output = isinstance(output, tuple)

        blocks = decoder_blocks(model)
        hooks = [
            blocks[self.n].register_forward_pre_hook(stop, with_kwargs=True),
            blocks[self.n - 1].register_forward_hook(shape),
        ]
        was_training = model.training
        model.eval()  # no dropout is active (frozen_prefix_blocks), so eval and train agree
        try:
            with (
                torch.no_grad(),
                bf16_autocast(device, self.bf16),
                training_attention(model, device, self.max_length, self.bf16),
            ):
                for start in range(0, len(sequences), self.batch_size):
                    chunk = sequences[start : start + self.batch_size]
                    batch = collate(
                        [Encoded(list(s), list(s)) for s in chunk], pad_id, side="right"
                    )
                    try:
                        model(
                            input_ids=batch["input_ids"].to(device),
                            attention_mask=batch["attention_mask"].to(device),
                            use_cache=False,
                        )
                    except _Reached as reached:
                        hidden = reached.hidden.float().cpu()
                    else:  # pragma: no cover - the hook always fires on a model with block n
                        raise RuntimeError("the forward pass never reached the first trained block")
                    for row, ids in enumerate(chunk):
                        self.states[ids] = hidden[row, : len(ids)].clone()
                        self.nbytes += self.states[ids].numel() * 4
        finally:
            for hook in hooks:
                hook.remove()
            model.train(was_training)

    def collate(
        self, base: Callable[[list[Any]], dict[str, Any]]
    ) -> Callable[[list[Any]], dict[str, Any]]:
        """``base`` (the plain collate) plus ``batch["forget"]["inputs_embeds"]``, right-padded with
        zeros (padding positions are masked, as their input ids were)."""
        import torch

        def collate_items(items: list[dict[str, Any]]) -> dict[str, Any]:
            batch = base([{k: v for k, v in it.items() if k != PREFIX_KEY} for it in items])
            states = [it[PREFIX_KEY] for it in items]
            width = batch["forget"]["input_ids"].shape[1]
            embeds = torch.zeros(len(states), width, states[0].shape[-1], dtype=states[0].dtype)
            for row, s in enumerate(states):
                embeds[row, : s.shape[0]] = s
            batch["forget"]["inputs_embeds"] = embeds
            return batch

        return collate_items

    @contextlib.contextmanager
    def skipping(self, model: Model) -> Iterator[None]:
        """Within the context the lowest ``n`` blocks return their input unchanged (their weights,
        names and state stay; only their forward is bypassed), so a forward from ``inputs_embeds``
        runs the upper blocks alone."""
        from obliviate.models.structure import decoder_blocks

        blocks = list(decoder_blocks(model)[: self.n])
        through = _pass_tuple if self.tuple_output else _pass_through
        for block in blocks:
            block.forward = through
        try:
            yield
        finally:
            for block in blocks:
                del block.forward


def _pass_through(hidden_states: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """A decoder block's forward that leaves the hidden states as they are."""
    return hidden_states


def _pass_tuple(hidden_states: Tensor, *args: Any, **kwargs: Any) -> tuple[Tensor]:
    """The same, for blocks that return ``(hidden_states, ...)`` (transformers 4.x,
    without a cache)."""
    return (hidden_states,)
