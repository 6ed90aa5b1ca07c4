"""The report's "Does it hold?" section: each run's attacks and the per-item verdict.

For every run that ``obliviate attack`` attacked: each attack's forget metrics on the unlearned
model before (the canonical prompt) and after the attack, beside the retain-only model under the
same attack; the verdict's counts (removed, suppressed, kept) with the thresholds it used; and the
items that came back, with the attacks that brought them back. A run whose forgetting did not hold
(any suppressed item) is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from obliviate.reporting.plots import fmt


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _agg(entries: Mapping[str, Any] | None, key: str) -> float | None:
    if not isinstance(entries, Mapping):
        return None
    entry = entries.get(key)
    return entry.get("aggregate") if isinstance(entry, Mapping) else None


def attack_table(run: Any) -> str:
    """One row per attack: each metric before -> after, and the retain-only model after the same attack."""
    attacks = run.attacks
    keys = sorted({k for a in attacks.values() for k in (a.unlearned or {})})
    head = "<th>attack</th><th class=\"num\">items</th>" + "".join(
        f'<th class="num">{_e(k)}<div class="desc">before → after · retain-only after</div></th>' for k in keys
    )
    rows = []
    for label, stored in attacks.items():
        first = (stored.unlearned or {}).get(keys[0]) if keys else None
        n = len(stored.items) if stored.items is not None else len((first or {}).get("values") or [])
        cells = [f"<td>{_e(label)}</td>", f'<td class="num">{n}</td>']
        for k in keys:
            before, after = _agg(run.metrics, k), _agg(stored.unlearned, k)
            ref = _agg(stored.reference, k)
            if after is None:
                cells.append('<td class="num">—</td>')
                continue
            rose = before is not None and ref is not None and after > max(before, ref)
            mark = ' class="num leak"' if rose else ' class="num"'
            ref_txt = f'<span class="delta">retain-only {fmt(ref)}</span>' if ref is not None else ""
            cells.append(f"<td{mark}>{fmt(before)} → <b>{fmt(after)}</b>{ref_txt}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table class="attacks"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def verdict_block(run: Any, questions: Mapping[str, tuple[str, str]]) -> str:
    """The verdict's counts and thresholds, and the items that came back."""
    v = run.attack_verdict
    if v is None:
        return '<p class="note">No verdict: the run was attacked without a retain-only model to compare with.</p>'
    c = v.counts
    thresholds = ", ".join(f"{_e(k)} {fmt(t)}" for k, t in v.thresholds.items())
    held = "did not hold" if c.get("suppressed") else "held under every attack run"
    flag = f'<span class="missing">{held}</span>' if c.get("suppressed") else f'<span class="tag">{held}</span>'
    summary = (
        f"<p>{flag} On {_e(v.metric)}: <b>{c.get('removed', 0)}</b> removed, <b>{c.get('suppressed', 0)}</b> "
        f"suppressed, <b>{c.get('kept', 0)}</b> kept. An item shows a fact under a condition when its score is above "
        f"the retain-only model's {fmt(v.quantile)} quantile under the same condition ({thresholds}).</p>"
    )
    back = [(iid, it) for iid, it in v.items.items() if it.verdict == "suppressed"]
    if not back:
        return summary
    rows = []
    for iid, it in back:
        q, a = questions.get(iid, ("", ""))
        scores = ", ".join(f"{_e(k)} {fmt(s)}" for k, s in it.scores.items())
        rows.append(
            f'<tr><td class="q"><div class="qtext">{_e(q)}</div><div class="truth">{_e(a)}</div>'
            f'<div class="itemid">{_e(iid)}</div></td><td>{_e(", ".join(it.recovered_by))}</td>'
            f"<td>{scores}</td></tr>"
        )
    table = (
        '<div class="scroll"><table class="items"><thead><tr><th>item that came back</th><th>recovered by</th>'
        f'<th>scores</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )
    return summary + table


def holds_section(report: Any, model_label: Any) -> str:
    """The whole section (an empty string when no run was attacked)."""
    attacked = [r for r in report.runs if r.attacks]
    if not attacked:
        return ""
    questions = report.task.items.get("forget", {})
    blocks = []
    for run in attacked:
        blocks.append(f"<h3>{model_label(run)}</h3>{attack_table(run)}{verdict_block(run, questions)}")
    lead = (
        "Unlearning often suppresses rather than removes: the knowledge comes back after a few fine-tuning steps, "
        "a 4-bit reload, other wordings or the facts in context. Each attack was applied to the unlearned model and "
        "to the retain-only model alike; a cell is red when the attacked score rose above both the score before the "
        "attack and the retain-only model's under the same attack."
    )
    return (f'<section class="card" id="holds"><h2>Does it hold?</h2><p class="lead">{lead}</p>'
            f'{"".join(blocks)}</section>')
