"""The contributor's map (docs/architecture.md): every Python block on it runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_map_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_each_example_on_the_map_runs(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    module = types.ModuleType("docs_example")  # a module of its own, as dataclasses need
    monkeypatch.setitem(sys.modules, "docs_example", module)
    exec(compile(code, str(DOC), "exec"), module.__dict__)


def test_the_map_names_only_packages_that_exist() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "obliviate"
    named = set(re.findall(r"`([a-z_]+)/`", DOC.read_text(encoding="utf-8")))
    missing = sorted(
        n for n in named if not (src / n).is_dir() and n not in {"docs", "tests", "bench"}
    )
    assert not missing, f"docs/architecture.md names packages that do not exist: {missing}"
