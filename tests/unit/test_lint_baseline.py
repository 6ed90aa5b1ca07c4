"""tools/lint_baseline.py: the type-error and line-length counts may only shrink."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    path = ROOT / "tools" / "lint_baseline.py"
    spec = importlib.util.spec_from_file_location("lint_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["lint_baseline"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["lint_baseline"]


def test_strict_entries_exist(tool) -> None:
    for entry in tool.STRICT:
        assert (ROOT / entry).exists(), f"STRICT names {entry}, which does not exist"
    assert not set(tool.STRICT) & set(tool.STRICT_LATER)


def test_is_strict(tool) -> None:
    strict = ["src/obliviate/runs/", "src/obliviate/api.py"]
    assert tool.is_strict("src/obliviate/runs/plan.py", strict)
    assert tool.is_strict("src/obliviate/api.py", strict)
    assert not tool.is_strict("src/obliviate/api_extra.py", strict)
    assert not tool.is_strict("src/obliviate/runsx/plan.py", strict)


def test_compare_names_what_grew_and_what_shrank(tool) -> None:
    counts = Counter({"a.py": 3, "b.py": 1, "c.py": 2})
    grown, shrunk = tool.compare("errors", counts, {"a.py": 2, "c.py": 2, "d.py": 4})
    assert grown == ["  a.py: 2 -> 3 errors", "  b.py: not in the baseline, now 1 errors"]
    assert shrunk == ["  d.py: 4 -> 0 errors"]


def _run(tool, monkeypatch, tmp_path, mypy, ruff, baseline, *args):
    monkeypatch.setattr(tool, "run_mypy", lambda: (Counter(mypy), 0.0))
    monkeypatch.setattr(tool, "run_ruff_e501", lambda: Counter(ruff))
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    paths = {}
    for name in ("MYPY_BASELINE", "RUFF_BASELINE"):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(baseline))
        monkeypatch.setattr(tool, name, paths[name])
    code = tool.main(list(args))
    return code, {k: json.loads(v.read_text()) for k, v in paths.items()}


def test_growth_fails_and_update_refuses_it(tool, monkeypatch, tmp_path) -> None:
    code, _ = _run(tool, monkeypatch, tmp_path, {"x.py": 2}, {}, {"x.py": 1})
    assert code == 1
    code, saved = _run(tool, monkeypatch, tmp_path, {"x.py": 2}, {}, {"x.py": 1}, "--update")
    assert code == 1 and saved["MYPY_BASELINE"] == {"x.py": 1}
    code, saved = _run(
        tool, monkeypatch, tmp_path, {"x.py": 2}, {}, {"x.py": 1}, "--update", "--allow-growth"
    )
    assert code == 0 and saved["MYPY_BASELINE"] == {"x.py": 2}


def test_shrinking_passes_and_update_lowers(tool, monkeypatch, tmp_path) -> None:
    code, _ = _run(tool, monkeypatch, tmp_path, {"x.py": 1}, {"y.py": 1}, {"x.py": 3, "y.py": 2})
    assert code == 0
    before = {"x.py": 3, "y.py": 2}
    code, saved = _run(tool, monkeypatch, tmp_path, {}, {"y.py": 1}, before, "--update")
    assert code == 0
    assert saved == {"MYPY_BASELINE": {}, "RUFF_BASELINE": {"y.py": 1}}


def test_a_strict_file_takes_no_baseline(tool, monkeypatch, tmp_path) -> None:
    strict = tool.STRICT[0]
    code, _ = _run(tool, monkeypatch, tmp_path, {strict: 1}, {}, {strict: 5})
    assert code == 1
    code, saved = _run(
        tool, monkeypatch, tmp_path, {strict: 1}, {}, {strict: 5}, "--update", "--allow-growth"
    )
    assert code == 1 and saved["MYPY_BASELINE"] == {strict: 5}  # nothing written
