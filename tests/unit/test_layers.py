"""The import layering: a module may import modules of its own layer or lower, never higher.

Every module under ``src/obliviate`` is parsed with :mod:`ast`; every ``import obliviate.x`` and
``from obliviate.x import y`` (at module level and inside functions) is an edge. Each module is
mapped to its layer by the longest matching prefix in :data:`LAYERS`. ``from obliviate import
__version__`` is allowed anywhere; the package ``__init__`` (a lazy facade) may name anything.

Run as a script (``python tests/unit/test_layers.py``) to rewrite the tiny model's vendored
tokenizer corpus after the fictional benchmark changed.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "obliviate"

LAYERS: dict[str, int] = {
    "obliviate.errors": 0,
    "obliviate.registry": 0,
    "obliviate.config": 0,
    "obliviate.files": 0,
    "obliviate.runtime": 0,  # OpenMP settings and the thread share: stdlib only (torch imported lazily)
    "obliviate.data": 1,
    "obliviate.models": 2,
    "obliviate.training": 2,
    "obliviate.scoring": 2,
    "obliviate.methods": 3,
    "obliviate.guards": 3,
    "obliviate.metrics": 3,
    "obliviate.benchmarks": 4,
    "obliviate.evaluation": 5,
    "obliviate.unlearning": 5,
    "obliviate.prepare": 5,
    "obliviate.runs": 5,
    "obliviate.results": 5,
    "obliviate.attacks": 5,
    "obliviate.report": 6,
    "obliviate.demo": 6,
    "obliviate.api": 6,
    "obliviate.cli": 7,
    "obliviate.__main__": 7,
}
TOP = PACKAGE  # the package __init__: a lazy facade above every layer


def layer_of(module: str) -> int | None:
    """The layer of ``module`` by longest matching prefix; None when no prefix matches."""
    if module == TOP:
        return max(LAYERS.values()) + 1
    best: str | None = None
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return LAYERS[best] if best is not None else None


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The obliviate modules that ``source`` (the text of ``module``) imports, in order."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if _ours(a.name))
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            if target is None or not _ours(target):
                continue
            if target == PACKAGE:
                # ``from obliviate import x``: x is a submodule, __version__ (allowed anywhere), or
                # a name of the lazy facade (an import of the top)
                found.extend(
                    f"{PACKAGE}.{a.name}" if _is_submodule(a.name) else PACKAGE
                    for a in node.names
                    if a.name != "__version__"
                )
            else:
                found.append(target)
    return found


def _is_submodule(name: str) -> bool:
    """Whether ``obliviate.<name>`` is a module or package under src/obliviate."""
    base = SRC / PACKAGE / name
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The absolute module a ``from ... import`` names (resolving relative imports)."""
    if node.level == 0:
        return node.module
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Upward edges and unknown modules found in one module's source."""
    problems: list[str] = []
    own = layer_of(module)
    if own is None:
        return [f"{module} has no layer: add its prefix to LAYERS in tests/unit/test_layers.py"]
    if module == TOP:
        return problems
    for target in imports_of(source, module, is_package=is_package):
        theirs = layer_of(target)
        if theirs is None:
            problems.append(
                f"{module} imports {target}, which has no layer: add its prefix to LAYERS in "
                "tests/unit/test_layers.py"
            )
        elif theirs > own:
            problems.append(f"{module} (layer {own}) imports {target} (layer {theirs})")
    return problems


def source_modules() -> list[tuple[str, Path, bool]]:
    """(dotted name, path, is_package) for every module under src/obliviate."""
    out = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out.append((".".join(parts), path, is_package))
    return out


def test_no_upward_imports() -> None:
    problems: list[str] = []
    for module, path, is_package in source_modules():
        problems.extend(violations(path.read_text(), module, is_package=is_package))
    assert not problems, "import-layer violations:\n" + "\n".join(problems)


def test_checker_finds_an_upward_import() -> None:
    source = (
        "from obliviate import __version__\n"
        "from obliviate.data.records import QA\n"
        "import obliviate.errors\n"
        "def corpus():\n"
        "    from obliviate.benchmarks.fictional import build_fictional\n"
        "    import obliviate.cli.main\n"
        "    from ..runs import unlearn\n"
    )
    assert sorted(violations(source, "obliviate.models.tiny")) == [
        "obliviate.models.tiny (layer 2) imports obliviate.benchmarks.fictional (layer 4)",
        "obliviate.models.tiny (layer 2) imports obliviate.cli.main (layer 7)",
        "obliviate.models.tiny (layer 2) imports obliviate.runs (layer 5)",
    ]
    assert violations("import os\n", "obliviate.nowhere") == [
        "obliviate.nowhere has no layer: add its prefix to LAYERS in tests/unit/test_layers.py"
    ]
    assert violations("from obliviate.nowhere import x\n", "obliviate.cli.ls") == [
        "obliviate.cli.ls imports obliviate.nowhere, which has no layer: add its prefix to "
        "LAYERS in tests/unit/test_layers.py"
    ]
    assert violations("from obliviate.cli import main\n", "obliviate") == []
    # the facade is the top: only __version__ may come from it
    assert violations("import obliviate\nfrom obliviate import unlearn, __version__\n", "obliviate.data.task") == [
        "obliviate.data.task (layer 1) imports obliviate (layer 8)",
        "obliviate.data.task (layer 1) imports obliviate (layer 8)",
    ]


def build_tiny_corpus() -> list[str]:
    """The tiny tokenizer's training text, generated from the benchmarks it is vendored from."""
    from obliviate.benchmarks.fictional import build_fictional
    from obliviate.benchmarks.worldknowledge import load_real_authors, load_world_facts

    task = build_fictional()
    lines: list[str] = []
    for split in task.all_splits().values():
        for r in split:
            d = r.to_dict()
            lines.extend(str(v) for v in d.values() if isinstance(v, str))
            lines.extend(str(v) for v in d.get("perturbed_answers", ()) or ())
    for qa in [*load_real_authors(), *load_world_facts()]:
        lines.extend([qa.question, qa.answer, *qa.perturbed_answers])
    lines.extend(task.templates)
    lines.extend(["Question:", "Answer:", "I don't know."])
    return lines


def test_tiny_corpus_matches_the_benchmarks() -> None:
    from obliviate.models.tiny import _corpus

    assert _corpus() == build_tiny_corpus(), (
        "src/obliviate/data/tiny_corpus.txt is stale: run `python tests/unit/test_layers.py`"
    )


if __name__ == "__main__":
    from obliviate.models.tiny import CORPUS_RESOURCE

    target = SRC / PACKAGE / "data" / CORPUS_RESOURCE
    target.write_text("\n".join(build_tiny_corpus()) + "\n", encoding="utf-8")
    print(f"wrote {target}")
