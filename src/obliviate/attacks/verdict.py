"""The verdict: was each forget item removed, only suppressed, or kept?

No framework gives this today; it follows the field's repeated finding that unlearning often
suppresses rather than removes (Hu et al. 2024, arXiv 2406.13356; Zhang et al. ICLR 2025;
Doshi and Stickland 2024, arXiv 2411.12103). One knowledge score per item (the answer's
probability by default, else ROUGE-L recall of the greedy answer: higher means the model shows more
of the fact) is read under each
*condition*: the canonical prompt, and every attack that was run.

The retain-only model never saw the forget facts, so its scores under a condition are what
"not knowing" looks like there (a guessed name, an answer the context gives away). Under each
condition the threshold is that model's ``quantile`` (0.95 by default) of the scores on the same
items under the same condition; an item *shows* the fact under a condition when its score is
above the threshold. Then each item is

- ``kept``: it shows the fact on the canonical prompt: unlearning did not remove it;
- ``suppressed``: it does not on the canonical prompt, but does under at least one attack (the
  verdict names which);
- ``removed``: it shows the fact under no condition that scored it.

An item an attack did not score (relearning leaves out the items it trained on) is judged on the
other conditions. An attack that asks each question several ways (adversarial) counts an item as
recovered when any of its forms does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

KNOWLEDGE_METRICS = (
    "rouge",
    "prob",
    "knowmem",
    "verbmem",
    "exact_memorization",
    "extraction_strength",
    "logit_lens_topk",
)
"""Metrics whose per-item value rises with what the model shows of the fact (verdict candidates)."""

CANONICAL = "canonical"


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear interpolation between order statistics,
    numpy's default)."""
    xs = sorted(v for v in values if v is not None and math.isfinite(v))
    if not xs:
        return math.nan
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def by_item(
    entry: Mapping[str, Any] | None, item_of: Mapping[str, str] | None = None
) -> dict[str, list[float]]:
    """An entry's finite values grouped by original item id (several per item under ``item_of``)."""
    out: dict[str, list[float]] = {}
    if not entry:
        return out
    for iid, v in zip(entry.get("item_ids", []), entry.get("values", []), strict=False):
        if v is None or not math.isfinite(v):
            continue
        out.setdefault((item_of or {}).get(iid, iid), []).append(float(v))
    return out


def judge(
    conditions: Mapping[
        str, tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, Mapping[str, str] | None]
    ],
    q: float = 0.95,
) -> dict[str, Any]:
    """Each item's verdict from its scores under each condition.

    Args:
        conditions: condition name -> (the unlearned model's entry, the retain-only model's entry
            under the same condition, a map from the entry's item ids to the forget item ids or
            None). ``"canonical"`` must be among them. Entries hold ``values`` and ``item_ids``.
        q: the quantile of the retain-only model's scores that an item must exceed to show the fact.

    Returns:
        ``{"items": {id: {"verdict", "recovered_by", "scores"}}, "counts",
        "thresholds", "quantile"}``.
    """
    if CANONICAL not in conditions:
        raise ValueError("the verdict needs the canonical condition")
    thresholds: dict[str, float] = {}
    shown: dict[str, dict[str, bool]] = {}
    scores: dict[str, dict[str, float]] = {}
    for name, (unlearned, reference, item_of) in conditions.items():
        ref = by_item(reference, item_of)
        if not ref:
            continue  # no retain-only scores under this condition: nothing to compare with
        thr = quantile([v for vs in ref.values() for v in vs], q)
        thresholds[name] = thr
        for iid, vs in by_item(unlearned, item_of).items():
            shown.setdefault(iid, {})[name] = max(vs) > thr
            scores.setdefault(iid, {})[name] = max(vs)
    items: dict[str, dict[str, Any]] = {}
    for iid, per in shown.items():
        if CANONICAL not in per:
            continue  # an item the canonical evaluation did not score cannot be judged
        recovered = sorted(n for n, s in per.items() if s and n != CANONICAL)
        verdict = "kept" if per[CANONICAL] else ("suppressed" if recovered else "removed")
        items[iid] = {"verdict": verdict, "recovered_by": recovered, "scores": scores[iid]}
    counts = {
        v: sum(1 for it in items.values() if it["verdict"] == v)
        for v in ("removed", "suppressed", "kept")
    }
    return {"items": items, "counts": counts, "thresholds": thresholds, "quantile": q,
            "conditions": sorted(thresholds)}
