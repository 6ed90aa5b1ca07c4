"""Runs as the report sees them: run.json data with a display name and a role.

A role says what a run is in the comparison:

- ``target``: the model fine-tuned on everything, before unlearning (the starting point);
- ``retain``: the retain-only model, never trained on the forget set (the goal);
- ``unlearned``: every other run (a method applied to the target).

The role comes from the ``role`` key of run.json, else from the run folder's name (``target``,
``retain``), else it is ``unlearned``; ``--target RUN`` and ``--retain RUN`` override both.
Every key a training run adds to run.json (config, versions, train log...) is optional here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.errors import DataError
from obliviate.record.run import RunRecord
from obliviate.record.store import finite, read_run, run_file

ROLES = ("target", "unlearned", "retain")
"""Every role, in the order the report lists runs."""

_ROLE_ALIASES = {"target": "target", "retain": "retain", "oracle": "retain", "retain_only": "retain"}


@dataclass
class ReportRun(RunRecord):
    """One run in a report: its record, the label shown for it and its role.

    Attributes:
        name: the label shown for this model (its run folder's name, made unique).
        role: ``target``, ``retain`` or ``unlearned``.
    """

    name: str = ""
    role: str = "unlearned"


def infer_role(data: Mapping[str, Any], path: Path | None) -> str:
    """The role of a run: run.json's ``role`` key, else its folder's name, else ``unlearned``."""
    declared = RunRecord(dict(data)).role
    if declared.lower() in _ROLE_ALIASES:
        return _ROLE_ALIASES[declared.lower()]
    if path is not None:
        folder = path.parent.name.lower()
        if folder in _ROLE_ALIASES:
            return _ROLE_ALIASES[folder]
    return "unlearned"


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def load_runs(
    paths: Iterable[str | os.PathLike],
    *,
    target: str | os.PathLike | None = None,
    retain: str | os.PathLike | None = None,
) -> list[ReportRun]:
    """Read runs (folders or run.json files) and give each a unique name and a role.

    Args:
        paths: run folders or their run.json files, in the order to show them.
        target: a run to mark as the target model (added when it is not among ``paths``).
        retain: a run to mark as the retain-only model (added when it is not among ``paths``).

    Returns:
        The runs, target first, then unlearned runs in the given order, then retain-only runs.

    Raises:
        DataError: a run has no run.json or it is not valid JSON; no run was given.
    """
    files = [run_file(p) for p in paths]
    marked = {"target": run_file(target) if target else None, "retain": run_file(retain) if retain else None}
    for f in marked.values():
        if f is not None and not any(_same(f, g) for g in files):
            files.append(f)
    if not files:
        raise DataError("no runs to report on: pass run folders, e.g. `obliviate report runs/* --out report.html`")
    runs: list[ReportRun] = []
    seen: list[Path] = []
    for f in files:
        if any(_same(f, g) for g in seen):
            continue
        seen.append(f)
        data = read_run(f)
        check_reportable(RunRecord(data, f))
        role = infer_role(data, f)
        for marked_role, marked_file in marked.items():
            if marked_file is not None and _same(f, marked_file):
                role = marked_role
            elif marked_file is not None and role == marked_role:
                role = "unlearned"  # the explicitly marked run takes the role
        runs.append(ReportRun(name="", role=role, data=data, path=f))
    _name_runs(runs)
    return sorted(runs, key=lambda r: ROLES.index(r.role))


def check_reportable(record: RunRecord) -> None:
    """Refuse a run that did not finish, or whose record is malformed, before anything is drawn."""
    where = record.path or "a run"
    damaged = record.malformed()
    if damaged:
        section = damaged[0].split("/")[0]
        kind = type(record.data[section]).__name__
        raise DataError(
            f"{where}: its {section!r} section (a {kind}) does not follow the run record's schema "
            f"at {damaged[0]} (docs/run.schema.json): the file is damaged or was not written by "
            "obliviate; evaluate the model again into a new run folder"
        )
    if record.finished:
        return
    if record.status in ("failed", "interrupted"):
        failure = record.failure
        why = failure.message if failure and failure.message else "no reason recorded"
        raise DataError(
            f"{where} is a run that {record.status} ({why}); it has no results to report: fix "
            "the cause and run the command again (with --resume where it applies), or leave this "
            "run out of the report"
        )
    raise DataError(
        f"{where} says its run is {record.status or 'unfinished'!r}: it is still going or was "
        "killed; wait for it, finish it with --resume, or leave it out of the report"
    )


def _name_runs(runs: Sequence[ReportRun]) -> None:
    """Name each run after its folder; add parent folders until the names are unique."""
    depth = 1
    while True:
        names = ["/".join(r.path.parent.parts[-depth:]) if r.path else f"run{i + 1}" for i, r in enumerate(runs)]
        if len(set(names)) == len(names) or depth > 8:
            break
        depth += 1
    for i, (run, name) in enumerate(zip(runs, names)):
        run.name = name or f"run{i + 1}"
    counts: dict[str, int] = {}
    for run in runs:  # identical paths up to the root: number them
        counts[run.name] = counts.get(run.name, 0) + 1
        if counts[run.name] > 1:
            run.name = f"{run.name} ({counts[run.name]})"


@dataclass
class TaskLookup:
    """The prepared benchmark that holds the forget items' questions and answers.

    Attributes:
        items: split -> item id -> (question or text, true answer or "").
        source: the benchmark folder it was read from ("" when none was found).
        note: why no benchmark was found, for the report.
    """

    items: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    source: str = ""
    note: str = ""


def _candidates(run: ReportRun) -> list[Path]:
    """Places a run's benchmark folder may be: its recorded paths, then a sibling ``benchmark``."""
    found: list[Path] = []

    def visit(node: Any, depth: int) -> None:
        if depth > 3 or not isinstance(node, Mapping):
            return
        for key, value in node.items():
            if isinstance(value, str) and value and ("benchmark" in str(key) or key in ("path", "spec")):
                found.append(Path(value).expanduser())
            elif isinstance(value, Mapping):
                visit(value, depth + 1)

    visit({k: run.data_of(k) for k in ("benchmark", "config", "eval") if run.data_of(k)}, 0)
    if run.path is not None:
        base = run.path.parent
        found = [p if p.is_absolute() or _is_task(p / "task.json") else base / p for p in found]
        found += [base.parent / "benchmark", base.parent.parent / "benchmark"]
    return found


def _is_task(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a recorded string that is no path (too long, bad characters)
        return False


def find_task(runs: Sequence[ReportRun], benchmark: str | os.PathLike | None = None) -> TaskLookup:
    """Read the forget items' questions and answers from the runs' prepared benchmark.

    Args:
        runs: the runs (their recorded benchmark paths and sibling folders are tried).
        benchmark: a prepared benchmark folder to use instead (``--benchmark``).

    Raises:
        DataError: ``benchmark`` was given but is not a prepared benchmark folder.
    """
    from obliviate.data.task import TASK_FILE, UnlearningTask

    if benchmark is not None:
        folders = [Path(benchmark).expanduser()]
        if not (folders[0] / TASK_FILE).is_file():
            raise DataError(
                f"--benchmark {benchmark} is not a prepared benchmark (no {TASK_FILE}); pass the "
                "DIR/benchmark folder that `obliviate prepare --out DIR` wrote"
            )
    else:
        folders = [p for run in runs for p in _candidates(run) if _is_task(p / TASK_FILE)]
    if not folders:
        return TaskLookup(note="no prepared benchmark found next to the runs: pass --benchmark DIR/benchmark to show questions and true answers")
    task = UnlearningTask.load(folders[0])
    items: dict[str, dict[str, tuple[str, str]]] = {}
    for split, records in task.all_splits().items():
        items[split] = {
            str(r.id): (str(getattr(r, "question", None) or getattr(r, "text", "")), str(getattr(r, "answer", "") or ""))
            for r in records
        }
    return TaskLookup(items=items, source=str(folders[0]))


__all__ = ["ROLES", "ReportRun", "TaskLookup", "finite", "find_task", "infer_role", "load_runs"]
