"""Retain partners are redrawn every epoch, reproducibly (issue 12, item 3)."""

from __future__ import annotations

from obliviate.benchmarks.fictional import build_fictional
from obliviate.data.formatting import PromptFormatter
from obliviate.methods.base import resolve_method
from obliviate.models.tiny import build_tiny_tokenizer
from obliviate.training.loop import TrainConfig, _micro_batches, epoch_view, plan_steps
from obliviate.unlearning import PairedItems, build_items


def _items(seed: int = 0) -> PairedItems:
    fmt = PromptFormatter(build_tiny_tokenizer(), "plain")
    method = resolve_method("grad_diff")
    items = build_items(build_fictional(), fmt, method, 128, seed)
    assert isinstance(items, PairedItems)
    return items


def _retain_seen(items: PairedItems, epochs: int) -> set[tuple[int, ...]]:
    """Distinct retain sequences the training loop's batches hold over ``epochs`` epochs."""
    cfg = TrainConfig(epochs=epochs, batch_size=8)
    seen: set[tuple[int, ...]] = set()
    for epoch, idx in _micro_batches(len(items), cfg, plan_steps(len(items), cfg)):
        view = epoch_view(items, epoch)
        seen.update(tuple(view[i]["retain"].input_ids) for i in idx)
    return seen


def test_partners_change_between_epochs_and_repeat_with_the_seed() -> None:
    items = _items()
    n = len(items)
    first = [items.partner(0, i) for i in range(n)]
    second = [items.partner(1, i) for i in range(n)]
    assert first != second
    assert sum(a == b for a, b in zip(first, second)) < n // 4  # a fresh draw, not a shift of the old one
    assert [_items().partner(3, i) for i in range(n)] == [items.partner(3, i) for i in range(n)]
    assert [_items(seed=1).partner(0, i) for i in range(n)] != first
    # Epoch 0 is the list itself (what prepare and LoRA initialisation read).
    assert epoch_view(items, 0) is items
    assert [it["retain"].input_ids for it in epoch_view(items, 2)] != [it["retain"].input_ids for it in items]
    assert all(it["forget"] is view["forget"] for it, view in zip(items, epoch_view(items, 2)))


def test_the_retain_term_sees_far_more_than_one_item_per_forget_item() -> None:
    items = _items()
    n_forget, n_retain = len(items), len(items._retain)
    assert n_retain > n_forget
    one_epoch, five_epochs = _retain_seen(items, 1), _retain_seen(items, 5)
    assert len(one_epoch) <= n_forget
    # Drawing with replacement, 5 epochs of n_forget draws from n_retain items cover in
    # expectation n_retain * (1 - (1 - 1/n_retain) ** (5 n_forget)) distinct items (~150 of 320 for
    # 40 forget items); requiring twice the forget count leaves a wide margin.
    assert len(five_epochs) >= 2 * n_forget, (n_forget, n_retain, len(five_epochs))
