"""The comparison a report shows: metric rows with goals and winners, missing
metrics, leaking items.

The goal of every metric is the retain-only model's value: a model that forgot perfectly and kept
everything else behaves like a model never trained on the forget set. Per metric, the model
closest to that goal is highlighted. Without a retain-only run the metric's direction decides
(highest, lowest, closest to 0.5, 1 or 0).

An item of the forget set *leaks* in a model when the model's answer still recalls the true
answer: its per-item ROUGE-L recall (``forget/rouge``) is above the threshold and, when the
retain-only model answered the same item, above the retain-only model's value too (a retain-only
model can guess common answers; matching it is not a leak).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from obliviate.reporting.runs import ReportRun, TaskLookup

HEADLINE = ("forget_quality", "model_utility", "privleak")
"""Corpus-level metrics listed first, in this order."""

_IDEAL = {"closer_to_half": 0.5, "closer_to_one": 1.0, "closer_to_zero": 0.0}
_TOLERANCE = 1e-12  # values this close count as a tie for "closest"


@dataclass
class MetricRow:
    """One metric across every model.

    Attributes:
        key: the metric's key in run.json (``forget/rouge``, ``forget_quality``).
        direction: which way is better (a key of ``obliviate.metrics.base.DIRECTIONS``).
        description: one line on what the number means.
        values: model name -> aggregate (None where the model lacks the metric).
        goal: the retain-only model's aggregate (None without one); for a metric measured against
            the retain-only model (forget quality, privleak), its value for that model itself.
        closest: names of the non-retain models closest to the goal (several on a tie).
        group: ``summary``, ``forget`` or ``other``: the section of the table.
    """

    key: str
    direction: str
    description: str
    values: dict[str, float | None]
    goal: float | None
    closest: list[str]
    group: str
    goal_by_definition: bool = False  # the goal is the metric's value for the reference itself


@dataclass
class ItemAnswer:
    """One model's answer to one forget item.

    Attributes:
        text: the generated answer (None when the run holds no generation for the item).
        score: the leak metric's per-item value (None when missing).
        leaks: whether this answer counts as a leak.
    """

    text: str | None
    score: float | None
    leaks: bool


@dataclass
class ForgetItem:
    """A forget item with each model's answer.

    Attributes:
        id: the item id.
        question: the question (or text) asked ("" when the benchmark was not found).
        truth: the true answer ("" when unknown).
        answers: model name -> its answer.
        leaks_in: names of the models where the item leaks and that count (unlearned models,
            or the target when no unlearned run is given).
    """

    id: str
    question: str
    truth: str
    answers: dict[str, ItemAnswer]
    leaks_in: list[str] = field(default_factory=list)


def metric_group(key: str) -> str:
    """``summary`` for corpus-level metrics, ``forget`` for forget splits, else ``other``."""
    split, _, _ = key.rpartition("/")
    if not split:
        return "summary"
    return "forget" if "forget" in split else "other"


def _describe(key: str, runs: Sequence[ReportRun]) -> tuple[str, str]:
    """A metric's direction and description from the first run that stored them,
    else the registry."""
    direction = description = ""
    for run in runs:
        entry = run.metrics.get(key, {})
        direction = direction or str(entry.get("direction") or "")
        description = description or str(entry.get("description") or "")
    if not description:
        from obliviate.metrics import METRICS

        name = key.rpartition("/")[2]
        description = METRICS.help(name) if name in METRICS else ""
    return direction, description


def self_value(key: str) -> float | None:
    """The value a reference-relative metric gives the reference model itself (None for others)."""
    from obliviate.metrics import METRICS

    name = key.rpartition("/")[2]
    return getattr(METRICS.get(name), "self_value", None) if name in METRICS else None


def shown_value(run: ReportRun, key: str) -> tuple[float | None, bool]:
    """A run's value of a metric as the report shows it, and whether it holds by definition.

    The retain-only model's value of a metric measured against the retain-only model is its value
    against itself (forget quality 1, privleak 0), whatever it stored without a reference.
    """
    if run.role == "retain":
        itself = self_value(key)
        if itself is not None:
            return itself, True
    return run.aggregate(key), False


def closest_to_goal(
    values: dict[str, float | None], goal: float | None, direction: str
) -> list[str]:
    """Names whose value is closest to ``goal`` (or best by ``direction`` when there is no goal)."""
    present = {k: v for k, v in values.items() if v is not None}
    if not present:
        return []
    if goal is not None:
        distance = {k: abs(v - goal) for k, v in present.items()}
    elif direction in _IDEAL:
        distance = {k: abs(v - _IDEAL[direction]) for k, v in present.items()}
    elif direction == "lower":
        distance = dict(present)
    else:
        distance = {k: -v for k, v in present.items()}
    best = min(distance.values())
    return [k for k, d in distance.items() if d - best <= _TOLERANCE]


def metric_keys(runs: Sequence[ReportRun]) -> list[str]:
    """Every metric key any run holds or skipped: headline metrics, forget splits, then the rest."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.metrics))
    for run in runs:
        keys.update(dict.fromkeys(run.skipped))
    order = {"summary": 0, "forget": 1, "other": 2}

    def rank(item: tuple[int, str]) -> tuple[int, int, int]:
        i, key = item
        head = HEADLINE.index(key) if key in HEADLINE else len(HEADLINE)
        return order[metric_group(key)], head, i

    return [k for _, k in sorted(enumerate(keys), key=rank)]


def metric_rows(runs: Sequence[ReportRun]) -> list[MetricRow]:
    """One row per metric key, with the goal and the closest model."""
    retain = next((r for r in runs if r.role == "retain"), None)
    rows = []
    for key in metric_keys(runs):
        direction, description = _describe(key, runs)
        values = {r.name: r.aggregate(key) for r in runs}
        goal, by_definition = shown_value(retain, key) if retain is not None else (None, False)
        candidates = {r.name: values[r.name] for r in runs if r.role != "retain"}
        rows.append(
            MetricRow(
                key,
                direction,
                description,
                values,
                goal,
                closest_to_goal(candidates, goal, direction),
                metric_group(key),
                by_definition,
            )
        )
    return rows


def missing_metrics(runs: Sequence[ReportRun], keys: Sequence[str]) -> dict[str, dict[str, str]]:
    """Model name -> {missing key: why} for every key some run has and this one lacks.

    The retain-only model never lacks a metric measured against itself (see :func:`shown_value`).
    """
    out: dict[str, dict[str, str]] = {}
    for run in runs:
        lacking = {}
        for key in keys:
            if shown_value(run, key)[0] is None:
                if key in run.metrics:
                    lacking[key] = "stored without a finite value"
                else:
                    lacking[key] = run.skipped.get(key, "not evaluated in this run")
        if lacking:
            out[run.name] = lacking
    return out


def forget_items(
    runs: Sequence[ReportRun],
    task: TaskLookup,
    metric: str = "forget/rouge",
    threshold: float = 0.5,
) -> list[ForgetItem]:
    """Each forget item with every model's answer and whether it leaks, leaking items first.

    Args:
        runs: the models.
        task: questions and true answers (may be empty).
        metric: the per-item metric that decides leaks; its split names the items and answers.
        threshold: an answer leaks when its value is above this (and above the retain model's).
    """
    split = metric.rpartition("/")[0] or "forget"
    scores = {r.name: r.per_item(metric) for r in runs}
    texts = {r.name: r.generations(split) for r in runs}
    ids: dict[str, None] = {}
    for r in runs:
        ids.update(dict.fromkeys(scores[r.name]))
        ids.update(dict.fromkeys(texts[r.name]))
    known = {item_id: i for i, item_id in enumerate(task.items.get(split, {}))}
    # the benchmark's order
    ids = dict.fromkeys(sorted(ids, key=lambda i: known.get(i, len(known))))
    retain = next((r for r in runs if r.role == "retain"), None)
    judged = [r.name for r in runs if r.role == "unlearned"] or [
        r.name for r in runs if r.role == "target"
    ]
    items = []
    for item_id in ids:
        floor = scores[retain.name].get(item_id) if retain is not None else None
        answers = {}
        for r in runs:
            score = scores[r.name].get(item_id)
            leaks = (
                r.role != "retain"
                and score is not None
                and score > threshold
                and (floor is None or score > floor)
            )
            answers[r.name] = ItemAnswer(texts[r.name].get(item_id), score, leaks)
        question, truth = task.items.get(split, {}).get(item_id, ("", ""))
        leaks_in = [name for name in judged if answers[name].leaks]
        items.append(ForgetItem(item_id, question, truth, answers, leaks_in))
    return sorted(items, key=lambda it: -len(it.leaks_in))


__all__ = [
    "HEADLINE",
    "ForgetItem",
    "ItemAnswer",
    "MetricRow",
    "closest_to_goal",
    "forget_items",
    "metric_group",
    "metric_keys",
    "metric_rows",
    "missing_metrics",
]
