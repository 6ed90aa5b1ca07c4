"""``obliviate report``: fake run.json files in, one HTML page plus JSON and CSV out.

The fake runs (forget items a, b, c; threshold 0.5):

=========  ========  =====================  ======  ======  ===============================
run        role      forget/rouge per item  FQ      MU      notes
=========  ========  =====================  ======  ======  ===============================
target     target    1.0, 0.8, 0.9          1e-12   0.6     no training log
npo        unlearned 0.4, 0.7, 0.55         0.05    0.5     3 logged steps
ga         unlearned 0.0, 0.55, 0.3         0.3     -       lacks model_utility, forget/prob
evalonly   unlearned 0.6, 0.3, 0.51         0.001   0.55    no training log
retain     retain    0.2, 0.6, 0.1          -       0.58    the goal
=========  ========  =====================  ======  ======  ===============================
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from obliviate.cli.main import main
from obliviate.errors import ConfigError
from obliviate.reporting import build_report, find_task, load_runs, make_report, render_html
from obliviate.reporting.plots import fmt, nice_ticks

IDS = ["a", "b", "c"]
ROUGE = {
    "target": [1.0, 0.8, 0.9],
    "npo": [0.4, 0.7, 0.55],
    "ga": [0.0, 0.55, 0.3],
    "evalonly": [0.6, 0.3, 0.51],
    "retain": [0.2, 0.6, 0.1],
}
FQ = {"target": 1e-12, "npo": 0.05, "ga": 0.3, "evalonly": 0.001}
MU = {"target": 0.6, "npo": 0.5, "evalonly": 0.55, "retain": 0.58}
EVIL = "<script>alert(1)</script>"


def _entry(aggregate: float, direction: str, values: list[float] | None = None) -> dict[str, Any]:
    return {
        "aggregate": aggregate,
        "values": values or [],
        "item_ids": IDS if values else [],
        "direction": direction,
        "description": f"what {direction} means",
        "extra": {},
    }


def _run(name: str, bench: str) -> dict[str, Any]:
    rouge = ROUGE[name]
    metrics = {"forget/rouge": _entry(round(sum(rouge) / 3, 4), "lower", rouge), "forget/prob": _entry(0.4, "lower")}
    if name in FQ:
        metrics["forget_quality"] = _entry(FQ[name], "higher")
    if name in MU:
        metrics["model_utility"] = _entry(MU[name], "higher")
    data: dict[str, Any] = {
        "metrics": metrics,
        "generations": {"forget": {i: f"{name} says {i}" for i in IDS}},
        "skipped": {},
        "eval": {"benchmark": "fictional@1/test", "benchmark_version": "1", "options": {"max_new_tokens": 8}},
    }
    if name == "ga":
        del metrics["forget/prob"]
        data["skipped"] = {"forget/prob": "the task has no perturbed answers"}
        data["generations"]["forget"]["a"] = '<img src=x onerror="boom()">'
    if name in ("npo", "ga"):  # as `obliviate unlearn` records them: the method inside the config
        log = [{"step": s, "loss": 2.0 - s / 10, "forget_nll": 1.0 + s, "retain_nll": 0.5} for s in (1, 2, 3)]
        data.update(
            seed=7, versions={"torch": "2.13.0"}, timings={"train": 12.5}, status="completed",
            config={"method": {"name": name, "beta": 0.1}, "benchmark": bench}, train={"log": log, "stopped": "max_steps"},
        )
    return data


@pytest.fixture()
def runs(tmp_path: Path) -> list[Path]:
    """prep/{target,retain,benchmark} and runs/{npo,ga,evalonly}; returns the five run folders."""
    bench = tmp_path / "prep" / "benchmark"
    (bench / "splits").mkdir(parents=True)
    kinds = {"forget": "qa", "retain": "qa", "holdout": "qa"}
    (bench / "task.json").write_text(json.dumps({"name": "fictional@1/test", "metadata": {}, "split_kinds": kinds}))
    questions = {"a": "Who is A?", "b": EVIL, "c": "Where is C?"}
    lines = [json.dumps({"question": q, "answer": f"truth of {i}", "id": i}) for i, q in questions.items()]
    (bench / "splits" / "forget.jsonl").write_text("\n".join(lines) + "\n")
    for split in ("retain", "holdout"):
        (bench / "splits" / f"{split}.jsonl").write_text("")
    folders = []
    for name in ("target", "npo", "ga", "evalonly", "retain"):
        folder = tmp_path / ("prep" if name in ("target", "retain") else "runs") / name
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps(_run(name, str(bench))))
        folders.append(folder)
    return folders


def _plane(html: str) -> str:
    match = re.search(r'<svg class="plot plane".*?</svg>', html, re.S)
    assert match, "the page has no plane SVG"
    return match.group(0)


def test_roles_names_and_order(runs: list[Path]) -> None:
    loaded = load_runs(runs)
    assert [(r.name, r.role) for r in loaded] == [
        ("target", "target"), ("npo", "unlearned"), ("ga", "unlearned"), ("evalonly", "unlearned"), ("retain", "retain"),
    ]


def test_benchmark_found_from_recorded_config(runs: list[Path]) -> None:
    # runs/npo has no sibling benchmark folder; its config.benchmark names prep/benchmark.
    lookup = find_task(load_runs([runs[1]]))
    assert lookup.source.endswith("prep/benchmark") and lookup.items["forget"]["a"] == ("Who is A?", "truth of a")
    assert load_runs([runs[1]])[0].method == "npo"


def test_explicit_roles_override_folder_names(runs: list[Path]) -> None:
    # --retain npo: npo becomes the goal and the folder named retain loses that role.
    loaded = {r.name: r.role for r in load_runs(runs, retain=runs[1])}
    assert loaded["npo"] == "retain" and loaded["retain"] == "unlearned"


def test_plane_has_one_point_per_model_with_both_metrics(runs: list[Path]) -> None:
    report = build_report(load_runs(runs))
    svg = _plane(render_html(report))
    models = re.findall(r'<g class="point role-\w+" data-model="([^"]+)"', svg)
    # ga lacks model_utility; the retain-only model lacks forget quality and is drawn at p = 1.
    assert sorted(models) == ["evalonly", "npo", "retain", "target"]
    points, off = report.plane_points()
    assert off == {"ga": "model_utility"}
    assert [p.forget_quality for p in points if p.role == "retain"] == [1.0]


def test_plane_with_complete_runs_has_every_model(runs: list[Path]) -> None:
    complete = [f for f in runs if f.name != "ga"]
    svg = _plane(render_html(build_report(load_runs(complete))))
    assert svg.count('<g class="point ') == len(complete) == 4


def test_goal_and_closest_model(runs: list[Path]) -> None:
    rows = {row.key: row for row in build_report(load_runs(runs)).rows}
    # model_utility, goal 0.58: |0.6-0.58|=0.02 (target) < |0.55-0.58|=0.03 < |0.5-0.58|=0.08.
    assert rows["model_utility"].goal == 0.58 and rows["model_utility"].closest == ["target"]
    # forget/rouge, goal (0.2+0.6+0.1)/3=0.3: ga's (0+0.55+0.3)/3=0.2833 is 0.0167 away, npo's 0.55 is 0.25 away.
    assert rows["forget/rouge"].goal == 0.3 and rows["forget/rouge"].closest == ["ga"]
    # forget_quality is measured against the retain-only model, whose own value is 1 by definition
    # (a KS test of a sample against itself): ga's 0.3 is the closest.
    assert rows["forget_quality"].goal == 1.0 and rows["forget_quality"].goal_by_definition
    assert rows["forget_quality"].closest == ["ga"]
    assert not rows["model_utility"].goal_by_definition
    assert list(rows)[:2] == ["forget_quality", "model_utility"]


def test_missing_metrics_are_listed_not_fatal(runs: list[Path]) -> None:
    report = build_report(load_runs(runs))
    assert report.missing["ga"] == {
        "model_utility": "not evaluated in this run",
        "forget/prob": "the task has no perturbed answers",
    }
    assert "retain" not in report.missing  # its forget quality against itself is 1, not a gap
    html = render_html(report)
    assert '1<span class="delta">by definition</span>' in html  # the goal, in the models and metrics tables
    assert 'title="the task has no perturbed answers">missing</span>' in html
    assert "ga lacks 2 metric(s)" in html


def test_leaking_items(runs: list[Path]) -> None:
    items = build_report(load_runs(runs)).items
    by_id = {it.id: it for it in items}
    # npo b: 0.7 > 0.5 and > retain's 0.6; npo c: 0.55 > 0.5 and > 0.1; npo a: 0.4 <= 0.5.
    assert [k for k in IDS if by_id[k].answers["npo"].leaks] == ["b", "c"]
    # ga b: 0.55 > 0.5 but not above retain's 0.6, so it does not leak.
    assert not any(by_id[k].answers["ga"].leaks for k in IDS)
    # c leaks in npo and evalonly (0.51 > 0.5, > 0.1), a in evalonly (0.6 > 0.2), b in npo: c comes first.
    assert [(it.id, it.leaks_in) for it in items] == [("c", ["npo", "evalonly"]), ("a", ["evalonly"]), ("b", ["npo"])]
    assert by_id["b"].question == EVIL and by_id["b"].truth == "truth of b"


def test_html_escapes_run_text(runs: list[Path]) -> None:
    html = render_html(build_report(load_runs(runs)))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert EVIL not in html
    assert "<img" not in html and "&lt;img src=x onerror=&quot;boom()&quot;&gt;" in html
    assert html.count("<script>") == 1  # only the page's own script


def test_training_curves_and_provenance(runs: list[Path]) -> None:
    html = render_html(build_report(load_runs(runs)))
    curves = re.findall(r'<div class="subcard curves" data-model="([^"]+)"', html)
    assert curves == ["npo", "ga"]
    assert "No training log: target, evalonly, retain." in html
    assert html.count('data-series="forget loss (NLL)"') == 2
    assert "Provenance" in html and "max_steps" in html and "2.13.0" in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "the page must not load anything from the network"


def test_cli_writes_html_json_csv(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "report.html"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    assert "wrote html" in capsys.readouterr().out
    data = json.loads(out.with_suffix(".json").read_text())
    assert [r["name"] for r in data["runs"]] == ["target", "npo", "ga", "evalonly", "retain"]
    assert sorted(data["comparison"]["leaking_items"]["npo"]) == ["b", "c"]
    assert data["benchmark_folder"].endswith("benchmark")
    with out.with_suffix(".csv").open() as f:
        table = list(csv.reader(f))
    assert table[0] == ["model", "role", "method", "forget_quality", "model_utility", "forget/rouge", "forget/prob"]
    # ga: forget quality 0.3, no model utility, rouge round((0 + 0.55 + 0.3) / 3, 4) = 0.2833, no prob.
    assert table[3] == ["ga", "unlearned", "ga", "0.3", "", "0.2833", ""]
    assert len(table) == 6
    assert not list(out.parent.glob(".*.tmp")), "temporary files must be gone"


def test_cli_errors(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(runs[0]), "--out", str(tmp_path / "report.txt")]) == 2
    assert "must end in .html" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="leak threshold"):
        make_report(runs, tmp_path / "r.html", leak_threshold=2.0)


def test_number_helpers() -> None:
    # range 0.21..0.658 in ~6 ticks: raw step 0.0895 rounds up to 0.1; first tick floor(2.1) * 0.1.
    assert nice_ticks(0.21, 0.658, 6) == [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert fmt(1e-12) == "1.00e-12" and fmt(0.5) == "0.5" and fmt(None) == "–" and fmt(0.123456) == "0.123"
