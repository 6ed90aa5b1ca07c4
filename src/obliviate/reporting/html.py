"""The report as one self-contained HTML page: inline CSS, inline SVG plots, a few lines of script.

Sections: the models at a glance, the forget-quality / model-utility plane, every metric against
the retain-only model's value, missing metrics, training curves, the forget set item by item,
and each run's provenance. Every text that comes from a run is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from obliviate import __version__
from obliviate.metrics.base import DIRECTIONS
from obliviate.reporting.assets import CSS, JS
from obliviate.reporting.build import FQ_KEY, MU_KEY, Report
from obliviate.reporting.compare import shown_value
from obliviate.reporting.holds import holds_section
from obliviate.reporting.plots import Series, fmt, line_chart_svg, marker_svg, plane_svg
from obliviate.reporting.runs import ReportRun

GENERATOR = "obliviate report"
"""The generator named in every page's <meta>: how a later report knows the page is its own."""

SECTIONS = (
    ("models", "Models"), ("plane", "Forget vs utility"), ("metrics", "Metrics"), ("missing", "Missing"),
    ("training", "Training"), ("items", "Forget set"), ("holds", "Does it hold?"), ("provenance", "Provenance"),
)
_ARROWS = {"higher": "↑ higher", "lower": "↓ lower", "closer_to_half": "→ 0.5", "closer_to_one": "→ 1", "closer_to_zero": "→ 0"}
_GROUPS = {"summary": "Summary", "forget": "Forget splits — should drop toward the goal", "other": "Other splits — should stay"}
_CURVES = (("forget_nll", "forget loss (NLL)", "#d6336c", False), ("retain_nll", "retain loss (NLL)", "#1e9e5a", False))


def e(value: Any) -> str:
    """Escape any value for HTML text and attributes."""
    return escape(str(value), quote=True)


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _missing(why: str) -> str:
    return f'<span class="missing" title="{e(why)}">missing</span>'


def _model(run: ReportRun, colours: Mapping[str, str]) -> str:
    return f'<span class="swatch" style="background:{colours[run.name]}"></span>{e(run.name)}'


def _role(role: str) -> str:
    label = {"retain": "retain-only (goal)", "target": "target (before)"}.get(role, role)
    return f'<span class="role role-{e(role)}">{e(label)}</span>'


def _card(anchor: str, title: str, lead: str, body: str) -> str:
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section class="card" id="{anchor}"><h2>{e(title)}</h2>{lead_html}{body}</section>'


def models_section(report: Report) -> str:
    """The models at a glance: role, method, the two headline metrics, leaks, missing metrics."""
    leaks = report.leak_counts()
    rows = []
    for run in report.runs:
        n_leak, n_scored = leaks[run.name]
        (fq, by_definition), mu = shown_value(run, FQ_KEY), run.aggregate(MU_KEY)
        fq_text = fmt(fq) if fq is not None else _missing("no forget_quality")
        if by_definition:
            fq_text += '<span class="delta">by definition</span>'

        steps = len(run.train_log)
        cells = [
            f"<td>{_model(run, report.colours)}</td>",
            f"<td>{_role(run.role)}</td>",
            f"<td>{e(run.method or '—')}</td>",
            f'<td class="num" data-v="{_num(fq)}">{fq_text}</td>',
            f'<td class="num" data-v="{_num(mu)}">{fmt(mu) if mu is not None else _missing("no model_utility")}</td>',
            f'<td class="num" data-v="{n_leak if n_scored else ""}">{f"{n_leak} / {n_scored}" if n_scored else "–"}</td>',
            f'<td class="num" data-v="{len(report.missing.get(run.name, {}))}">{len(report.missing.get(run.name, {}))}</td>',
            f'<td class="num" data-v="{steps}">{steps or "–"}</td>',
            f"<td>{e(run.stopped or '—')}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    heads = ["model", "role", "method", "forget quality", "model utility", "leaking items", "missing metrics", "steps", "stopped"]
    head = "".join(f'<th data-col="{i}"{" class=num" if 3 <= i <= 7 else ""}>{e(h)}</th>' for i, h in enumerate(heads))
    table = f'<div class="scroll"><table class="sortable" id="models-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    lead = (
        f"{len(report.runs)} model(s). Leaking items: forget items whose answer's {e(report.leak_metric)} is above "
        f"{fmt(report.leak_threshold)} and above the retain-only model's. Click a column to sort."
    )
    return _card("models", "Models", lead, table)


def plane_section(report: Report) -> str:
    """The forget-quality / model-utility plane with a legend and the models that are not on it."""
    points, off = report.plane_points()
    retain = report.retain
    goal = retain.aggregate(MU_KEY) if retain is not None else None
    if points:
        svg = plane_svg(points, goal_utility=goal)
    else:
        svg = '<p class="note">No model has both forget_quality and model_utility, so the plane is empty.</p>'
    legend = [
        f'<div class="legend-row">{marker_svg(p.role, report.colours[p.name])}'
        f"{e(p.name)} {_role(p.role)}</div>"
        for p in points
    ]
    side = "".join(legend)
    if goal is not None and points:
        side += '<p class="meta">Dashed green line: the retain-only model\'s utility. Dashed grey line: p = 0.05.</p>'
    if off:
        items = "".join(f"<li>{e(name)}: no {e(what)}</li>" for name, what in off.items())
        side += f'<p class="note">Not on the plane:</p><ul>{items}</ul>'
    lead = (
        "Each point is a model. Right: its answers on the forget set are statistically indistinguishable "
        "from the retain-only model's (forget quality is a KS-test p-value, on a log axis). Up: it kept "
        "its knowledge of everything else (model utility). The target (red diamond) is where unlearning "
        "starts; the retain-only model (green star) is the goal."
    )
    return _card("plane", "Forget quality versus model utility", lead, f'<div class="plane-box"><div>{svg}</div><div class="plane-side">{side}</div></div>')


def metrics_section(report: Report) -> str:
    """Every metric: direction, meaning, the retain-only goal, each model's value, the closest."""
    others = [r for r in report.runs if r.role != "retain"]
    retain = report.retain
    head = '<th>metric</th><th>better</th><th class="num">goal: retain-only</th>'
    head += "".join(f'<th class="num">{_model(r, report.colours)}</th>' for r in others)
    body, group = [], None
    for row in report.rows:
        if row.group != group:
            group = row.group
            body.append(f'<tr class="group"><td colspan="{3 + len(others)}">{e(_GROUPS[group])}</td></tr>')
        direction = DIRECTIONS.get(row.direction, row.direction or "unknown")
        cells = [
            f'<td><div class="key">{e(row.key)}</div><div class="desc">{e(row.description or "no description stored")}</div></td>',
            f'<td><span class="dir" title="{e(direction)}">{e(_ARROWS.get(row.direction, row.direction or "?"))}</span></td>',
        ]
        if retain is None:
            cells.append('<td class="num goal">no retain-only run</td>')
        elif row.goal is None:
            cells.append(f'<td class="num goal">{_missing(report.missing.get(retain.name, {}).get(row.key, "missing"))}</td>')
        elif row.goal_by_definition:
            why = "measured against the retain-only model, which scores this against itself"
            cells.append(f'<td class="num goal">{fmt(row.goal)}<span class="delta" title="{e(why)}">by definition</span></td>')
        else:
            cells.append(f'<td class="num goal">{fmt(row.goal)}</td>')
        for run in others:
            value = row.values[run.name]
            if value is None:
                cells.append(f'<td class="num">{_missing(report.missing.get(run.name, {}).get(row.key, "missing"))}</td>')
                continue
            best = run.name in row.closest
            delta = f'<span class="delta">Δ {value - row.goal:+.3g}</span>' if row.goal is not None else ""
            tag = '<span class="tag">◎ closest</span>' if best else ""
            cells.append(f'<td class="num{" best" if best else ""}">{fmt(value)}{delta}{tag}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    table = f'<div class="scroll"><table id="metrics-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    lead = (
        "The goal of every metric is the retain-only model's value: a model that forgot exactly the "
        "forget set behaves like one never trained on it. Per metric the model closest to the goal is "
        "highlighted (without a retain-only run: the best by the metric's direction). Δ is the gap to the goal."
    )
    return _card("metrics", "Metrics", lead, table if report.rows else '<p class="note">No run holds any metric.</p>')


def missing_section(report: Report) -> str:
    """Per model, the metrics another model has and this one lacks, with the reason."""
    if not report.missing:
        return _card("missing", "Missing metrics", "", '<p class="ok">Every model has every metric.</p>')
    parts = []
    for name, lacking in report.missing.items():
        items = "".join(f'<li><span class="key">{e(k)}</span> <span class="why">— {e(why)}</span></li>' for k, why in lacking.items())
        parts.append(f'<h3 class="missing-model">{e(name)} lacks {len(lacking)} metric(s)</h3><ul class="missing-list">{items}</ul>')
    lead = "Metrics that at least one model has and these models lack. Their cells read <span class=\"missing\">missing</span>."
    return _card("missing", "Missing metrics", lead, "".join(parts))


def _curve_charts(run: ReportRun) -> str:
    log = run.train_log
    xs = [float(row.get("step", i + 1)) for i, row in enumerate(log)]

    def series(key: str, label: str, colour: str, dashed: bool) -> Series | None:
        pts = [(x, float(row[key])) for x, row in zip(xs, log) if isinstance(row.get(key), int | float)]
        return Series(label, [p[0] for p in pts], [p[1] for p in pts], colour, dashed) if pts else None

    nll = [s for s in (series(*c) for c in _CURVES) if s is not None]
    loss = series("loss", "objective (loss)", "#4b6584", False)
    charts = []
    if nll:
        charts.append(line_chart_svg(nll, y_label="NLL"))
    if loss is not None:
        charts.append(line_chart_svg([loss], y_label="loss"))
    if not charts:
        return '<p class="note">The training log holds no loss values.</p>'
    return f'<div class="charts">{"".join(charts)}</div>'


def training_section(report: Report) -> str:
    """Forget and retain loss per step for every run with a training log."""
    trained = [r for r in report.runs if r.train_log]
    cards = []
    for run in trained:
        last = run.train_log[-1]
        final = " · ".join(f"{k} {fmt(float(v))}" for k, v in last.items() if k != "step" and isinstance(v, int | float))
        meta = f"{len(run.train_log)} logged steps<br>stopped: {e(run.stopped or 'unknown')}"
        cards.append(
            f'<div class="subcard curves" data-model="{e(run.name)}"><div class="run-meta"><h3>{_model(run, report.colours)}</h3>'
            f'<div class="meta">method: {e(run.method or "not recorded")}<br>{meta}</div><div class="meta">last step: {e(final)}</div></div>'
            f"{_curve_charts(run)}</div>"
        )
    untrained = [r.name for r in report.runs if not r.train_log]
    note = f'<p class="meta">No training log: {e(", ".join(untrained))}.</p>' if untrained else ""
    body = f'<div class="stack">{"".join(cards)}</div>{note}' if cards else f'<p class="note">No run holds a training log.</p>{note}'
    lead = "Forget loss should rise (the model unlearns) while retain loss stays flat (it keeps the rest)."
    return _card("training", "Training curves", lead, body)


def items_section(report: Report) -> str:
    """The forget set item by item: question, truth, each model's answer, leaks flagged."""
    if not report.items:
        why = f"No run holds per-item values or generations of {report.leak_metric}."
        return _card("items", "Forget set, item by item", "", f'<p class="note">{e(why)}</p>')
    head = '<th data-col="0" class="num">#</th><th data-col="1" class="num">leaks in</th><th data-col="2">item</th>'
    head += "".join(f'<th data-col="{i + 3}">{_model(r, report.colours)}</th>' for i, r in enumerate(report.runs))
    body = []
    for n, item in enumerate(report.items, 1):
        q = f'<div class="qtext">{e(item.question)}</div>' if item.question else ""
        t = f'<div class="truth">{e(item.truth)}</div>' if item.truth else ""
        cells = [
            f'<td class="num" data-v="{n}">{n}</td>',
            f'<td class="num count" data-v="{len(item.leaks_in)}" title="{e(", ".join(item.leaks_in))}">{len(item.leaks_in)}</td>',
            f'<td class="q">{q}{t}<div class="itemid">{e(item.id)}</div></td>',
        ]
        for run in report.runs:
            a = item.answers[run.name]
            text = f'<span class="text">{e(a.text)}</span>' if a.text is not None else _missing("no generated answer stored")
            score = f'<span class="score">ROUGE-L {fmt(a.score)}</span>' if a.score is not None else ""
            cells.append(f'<td class="answer{" leak" if a.leaks else ""}" data-v="{_num(a.score)}">{text}{score}</td>')
        body.append(f'<tr class="{"leaky" if item.leaks_in else "clean"}">{"".join(cells)}</tr>')
    leaky = sum(bool(it.leaks_in) for it in report.items)
    judged = "unlearned model" if any(r.role == "unlearned" for r in report.runs) else "target model"
    controls = (
        f'<div class="controls"><label><input type="checkbox" id="only-leaks"> only items that leak</label>'
        f"<span><b>{leaky}</b> of {len(report.items)} items leak in at least one {judged}</span></div>"
    )
    note = f'<p class="note">{e(report.task.note)}</p>' if report.task.note else ""
    lead = (
        f"Each model's greedy answer to each forget item. An answer leaks (red) when its {e(report.leak_metric)} "
        f"(ROUGE-L recall against the true answer) is above {fmt(report.leak_threshold)} and above the retain-only "
        "model's on the same item. Leaking items come first."
    )
    table = f'<div class="scroll"><table class="sortable items" id="items"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    return _card("items", "Forget set, item by item", lead, note + controls + table)


def _kv_table(pairs: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{e(k)}</td><td>{e(fmt(float(v)) if isinstance(v, float) else _plain(v))}</td></tr>" for k, v in pairs.items()
    )
    return f"<table>{rows}</table>"


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return "—" if value is None or value == "" else str(value)


def provenance_section(report: Report) -> str:
    """Each run's identity, config, versions, seed and timings, collapsed by default."""
    blocks = []
    for run in report.runs:
        ident = {
            "run file": str(run.path) if run.path else "in memory", "role": run.role, "method": run.method,
            "model": run.data_of("model") or None, "benchmark": run.data_of("benchmark") or run.eval_info.benchmark or None,
            "seed": run.seed, "status": run.status or None, "stopped": run.stopped,
        }
        parts = [f"<div><h4>Identity</h4>{_kv_table(ident)}</div>"]
        for key, title in (("timings", "Timings (s)"), ("versions", "Versions")):
            if run.data_of(key):
                parts.append(f"<div><h4>{title}</h4>{_kv_table(run.data_of(key))}</div>")
            else:
                parts.append(f"<div><h4>{title}</h4>{_missing(f'the run records no {key}')}</div>")
        ev = run.data_of("eval")
        if ev:
            parts.append(f"<div><h4>Evaluation</h4>{_kv_table({k: v for k, v in ev.items() if k != 'options'})}</div>")
        for title, value in (("Config", run.config), ("Evaluation options", run.eval_info.options)):
            if value:
                parts.append(f'<div><h4>{title}</h4><pre class="json">{e(json.dumps(value, indent=2, ensure_ascii=False))}</pre></div>')
        precision = run.eval_info.precision
        evaluated = f" · evaluated in {e(precision)}" if precision else ""
        summary = (f'{_model(run, report.colours)} <span class="meta">{_role(run.role)} {e(run.method)} · seed '
                   f'{e("—" if run.seed is None else run.seed)}{evaluated}</span>')
        blocks.append(f'<details class="prov"><summary>{summary}</summary><div class="prov-body">{"".join(parts)}</div></details>')
    return _card("provenance", "Provenance", "How each run was made. Click a run to open it.", "".join(blocks))


def render_html(report: Report) -> str:
    """The whole page as one string."""
    holds = holds_section(report, lambda run: _model(run, report.colours))
    nav = "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in SECTIONS if a != "holds" or holds)
    sub = f"{len(report.runs)} models · generated {e(report.created)} by obliviate {e(__version__)}"
    if report.task.source:
        sub += f" · questions from {e(report.task.source)}"
    sections = [
        models_section(report), plane_section(report), metrics_section(report), missing_section(report),
        training_section(report), items_section(report), holds, provenance_section(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{GENERATOR}">'
        f"<title>{e(report.title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top"><div class="wrap"><h1>{e(report.title)}</h1><div class="sub">{sub}</div></div></header>'
        f'<nav class="toc"><div class="wrap">{nav}</div></nav><main class="wrap">{"".join(sections)}</main>'
        f"<footer>Self-contained: plots are inline SVG; nothing is loaded from the network.</footer>"
        f"<script>{JS}</script></body></html>\n"
    )


__all__ = ["render_html"]
