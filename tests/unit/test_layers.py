"""The import layering: a module may import modules of its own layer or lower, never higher.

Every module under ``src/obliviate`` is parsed with :mod:`ast`; every ``import obliviate.x`` and
``from obliviate.x import y`` (at module level, inside functions and under ``if TYPE_CHECKING``)
is an edge. Each module is mapped to its layer by the longest matching prefix in :data:`LAYERS`.
``from obliviate import __version__`` is allowed anywhere; the package ``__init__`` (a lazy
facade) may name anything. Packages of one layer may import each other, but the top-level
packages and modules must not import each other in a cycle (``training`` and ``scoring`` once
did, through function-level imports), and every entry of :data:`LAYERS` must name a module that
exists.

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
    "obliviate.types": 0,  # Model, Tokenizer, Batch: typing only (torch named under TYPE_CHECKING)
    "obliviate.data": 1,
    "obliviate.models": 2,  # models.precision: the bf16 and device helpers, below training, scoring
    "obliviate.training": 3,
    "obliviate.scoring": 3,
    "obliviate.methods": 3,
    "obliviate.metrics": 3,
    "obliviate.benchmarks": 4,
    "obliviate.record": 5,  # the typed run record and its one writer
    "obliviate.evaluation": 6,  # engines: no output folders, no run protocol
    "obliviate.unlearning": 6,
    "obliviate.attacks": 6,
    "obliviate.reporting": 6,  # reads records; the demo and the faces draw with it
    "obliviate.runs": 7,  # the application layer: one module per run kind
    "obliviate.api": 8,
    "obliviate.cli": 9,
    "obliviate.__main__": 9,
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


def package_of(module: str) -> str:
    """The top-level package or module of ``module`` (``obliviate.scoring.model`` ->
    ``obliviate.scoring``); the facade ``obliviate`` is its own."""
    return ".".join(module.split(".")[:2])


def package_graph(modules: list[tuple[str, str, bool]]) -> dict[str, set[str]]:
    """Edges between top-level packages, from (module, source, is_package) triples; the facade is
    left out (it sits above every layer and may name anything)."""
    graph: dict[str, set[str]] = {}
    for module, source, is_package in modules:
        if module == TOP:
            continue
        own = package_of(module)
        for target in imports_of(source, module, is_package=is_package):
            theirs = package_of(target)
            if theirs not in (own, TOP):
                graph.setdefault(own, set()).add(theirs)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path ``[a, b, ..., a]``) per strongly connected group of packages
    that import each other, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    cycles = []
    for group in sorted(groups, key=min):
        start = min(group)
        came_from: dict[str, str] = {}
        queue = [start]
        while start not in came_from:  # breadth first, inside the group, back to the start
            v = queue.pop(0)
            for w in sorted(graph[v] & group):
                if w not in came_from:
                    came_from[w] = v
                    queue.append(w)
        path = [start]
        while len(path) == 1 or path[-1] != start:
            path.append(came_from[path[-1]])
        cycles.append(path[::-1])
    return cycles


def test_no_import_cycle_between_packages() -> None:
    sources = [(module, path.read_text(), is_pkg) for module, path, is_pkg in source_modules()]
    cycles = import_cycles(package_graph(sources))
    assert not cycles, "top-level packages import each other in a cycle:\n" + "\n".join(
        " -> ".join(c) for c in cycles
    )


def test_checker_finds_a_cycle() -> None:
    # the cycle this test was written for: two packages of one layer, through function-level imports
    sources = [
        ("obliviate.training.prefix", "def f():\n    from obliviate.scoring.x import f\n", False),
        ("obliviate.scoring.model", "def g():\n    from ..training.precision import g\n", False),
        ("obliviate.scoring", "from .model import g\n", True),  # inside a package: no edge
        ("obliviate.methods.ga", "from obliviate.training import train\n", False),
        ("obliviate", "from obliviate.methods import ga\n", True),  # the facade: left out
    ]
    graph = package_graph(sources)
    assert graph == {
        "obliviate.training": {"obliviate.scoring"},
        "obliviate.scoring": {"obliviate.training"},
        "obliviate.methods": {"obliviate.training"},
    }
    assert import_cycles(graph) == [
        ["obliviate.scoring", "obliviate.training", "obliviate.scoring"]
    ]
    three = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert import_cycles(three) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_layers_name_modules_that_exist() -> None:
    missing = [prefix for prefix in LAYERS if not _exists(prefix)]
    assert not missing, "LAYERS names modules that do not exist (remove them): " + ", ".join(
        missing
    )


def _exists(module: str) -> bool:
    base = SRC.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


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
        "obliviate.models.tiny (layer 2) imports obliviate.cli.main (layer 9)",
        "obliviate.models.tiny (layer 2) imports obliviate.runs (layer 7)",
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
        "obliviate.data.task (layer 1) imports obliviate (layer 10)",
        "obliviate.data.task (layer 1) imports obliviate (layer 10)",
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
