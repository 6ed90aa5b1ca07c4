"""Unlearning protocols: requests one after another (sequential) and forget sets of growing size (scale).

MUSE (Shi et al. 2024, arXiv 2407.06460, section 5) measures two properties beside the six-way
evaluation; its scripts ``baselines/scripts/unlearn_news_{sust,scal}.sh`` run them:

- **sustainability** (:func:`sequential`): ``k`` unlearning requests arrive one after another;
  request ``i`` unlearns its own forget set starting from request ``i - 1``'s model. Metrics after
  each request show whether utility survives repeated unlearning.
- **scalability** (:func:`scale`): forget sets of growing size, each unlearned from the original
  model. Metrics against size show how the cost grows with the amount forgotten.

Each step is an ordinary unlearning run in ``OUT/<step>/`` (``model/``, ``run.json``), evaluated
on the benchmark's whole task (as MUSE evaluates every step on its fixed forget and retain
probes), so forget quality against the retain-only model stays comparable across steps; the
per-item forget metrics are also summarised over each step's own items and over the rest.
``OUT/protocol.json`` lists the steps with their items and headline numbers, rewritten
atomically after each step. A protocol resumes (``resume=True``) only with the same model,
benchmark, method, options and steps; finished steps are then read back, not recomputed.

A forget set is split by the records' ``subject`` (a person, a book), so that one request never
holds half of somebody: subjects are shuffled with ``seed`` and dealt into contiguous groups. A
benchmark that ships its own request sets (MUSE's ``sust_forget_1 .. 4`` and ``scal_forget_1 ..
4``) names them instead.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError
from obliviate.record import Recorder, RunRecord, identity_digest, load_reference
from obliviate.runs.checks import (
    benchmark_folder,
    check_output,
    clear_owned,
    decide_output,
    is_loaded,
    model_folder,
    require_model,
)

if TYPE_CHECKING:
    from obliviate.data.task import UnlearningTask
    from obliviate.runs.unlearn import Run

PROTOCOL_FILE = "protocol.json"
PROTOCOL_SCHEMA = 1


@dataclass
class Request:
    """One step's forget set: its records and how it was chosen."""

    name: str  # "request-1", "size-2"
    forget: list[Any]
    subjects: list[str]
    split: str | None = None  # the benchmark's own split it came from, if any

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "items": len(self.forget), "subjects": self.subjects, "split": self.split,
                "item_ids": [r.id for r in self.forget]}


@dataclass
class Step:
    """A finished step: its request, the unlearning run and its evaluation."""

    request: Request
    run: Run
    results: RunRecord
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Protocol:
    """A finished protocol: its steps in order and what ``OUT/protocol.json`` holds."""

    kind: str
    steps: list[Step]
    record: dict[str, Any]
    out: Path | None = None

    def table(self) -> list[dict[str, Any]]:
        """One row per step: its name, size and headline aggregates."""
        return [dict(s.summary) for s in self.steps]


def subjects_of(records: list[Any]) -> list[str]:
    """The records' subjects in order of first appearance (a record without one is its own subject)."""
    seen: dict[str, None] = {}
    for r in records:
        seen.setdefault(getattr(r, "subject", "") or f"item:{r.id}", None)
    return list(seen)


def _by_subject(records: list[Any], subjects: list[str]) -> list[Any]:
    wanted = set(subjects)
    return [r for r in records if (getattr(r, "subject", "") or f"item:{r.id}") in wanted]


def _shuffled_subjects(task: UnlearningTask, seed: int) -> list[str]:
    subjects = subjects_of(list(task.forget))
    random.Random(f"protocol:{seed}").shuffle(subjects)
    return subjects


def split_requests(task: UnlearningTask, requests: int | list[str], seed: int = 0) -> list[Request]:
    """The forget sets of sequential requests: ``k`` disjoint groups of subjects, or named splits."""
    if isinstance(requests, list | tuple):
        return _named(task, list(requests), "request")
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ConfigError(f"requests is the number of unlearning requests (>= 1) or a list of split names, not {requests!r}")
    subjects = _shuffled_subjects(task, seed)
    if requests > len(subjects):
        raise ConfigError(
            f"{requests} requests need at least {requests} subjects in the forget split, and {task.name!r} has "
            f"{len(subjects)}; ask for fewer requests"
        )
    base, extra = divmod(len(subjects), requests)
    out, start = [], 0
    for i in range(requests):
        n = base + (1 if i < extra else 0)
        group = subjects[start : start + n]
        start += n
        out.append(Request(f"request-{i + 1}", _by_subject(list(task.forget), group), group))
    return out


def growing_sets(task: UnlearningTask, sizes: list[int | float] | list[str], seed: int = 0) -> list[Request]:
    """Nested forget sets of growing size: numbers of subjects, fractions of them, or named splits."""
    given: list[int | float | str] = list(sizes)
    if not given:
        raise ConfigError("sizes names no forget set; give e.g. sizes=[1, 2, 4] (subjects) or [0.25, 0.5, 1.0]")
    names = [s for s in given if isinstance(s, str)]
    if len(names) == len(given):
        return _named(task, names, "size")
    subjects = _shuffled_subjects(task, seed)
    counts = []
    for s in given:
        if isinstance(s, bool) or not isinstance(s, int | float):
            raise ConfigError(f"sizes are numbers of subjects (2) or fractions of them (0.5), or split names; got {s!r}")
        n = int(s) if isinstance(s, int) else round(float(s) * len(subjects))
        if isinstance(s, float) and not 0.0 < s <= 1.0:
            raise ConfigError(f"a fractional size must be in (0, 1], got {s}")
        if not 1 <= n <= len(subjects):
            raise ConfigError(f"size {s} gives {n} subjects; the forget split of {task.name!r} has {len(subjects)}")
        counts.append(n)
    if counts != sorted(set(counts)):
        raise ConfigError(f"sizes must grow strictly (nested forget sets); got {given} = {counts} subjects")
    return [Request(f"size-{n}", _by_subject(list(task.forget), subjects[:n]), subjects[:n]) for n in counts]


def _named(task: UnlearningTask, names: list[str], prefix: str) -> list[Request]:
    out = []
    for i, name in enumerate(names):
        records = task.splits.get(name)
        if not records:
            have = ", ".join(sorted(task.splits)) or "none"
            raise ConfigError(f"{task.name!r} has no split {name!r} to unlearn (its extra splits: {have})")
        out.append(Request(f"{prefix}-{i + 1}", list(records), subjects_of(list(records)), split=name))
    return out


def request_task(task: UnlearningTask, request: Request) -> UnlearningTask:
    """The task one step unlearns: the request's forget set, the benchmark's other splits.

    Its name gains ``+<step>`` and it has no source folder, so its run.json never names the
    whole benchmark as what was forgotten.
    """
    return dataclasses.replace(task, forget=list(request.forget), name=f"{task.name}+{request.name}", source="")


def sequential(
    model: Any,
    task: Any,
    method: str | None = None,
    /,
    *,
    requests: int | list[str] = 3,
    options: dict[str, Any] | None = None,
    reference: Any = None,
    eval: dict[str, Any] | None = None,
    metrics: str | list[str] | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Protocol:
    """Unlearn ``k`` requests one after another (MUSE sustainability), evaluating after each.

    Args:
        model: the model to start from (a spec or a loaded model; never trained in place).
        task: the benchmark (a task, a prepared folder or a registered name).
        method: the unlearning method; ``options`` holds its option tree as :func:`obliviate.unlearn`'s
            ``config`` (``{"method": {...}, "train": {...}}``), the same for every request.
        requests: the number of requests (the forget split dealt by subject) or the benchmark's
            own request splits (``["sust_forget_1", ..., "sust_forget_4"]``).
        reference: the retain-only model's run, for forget quality.
        eval: evaluation options (:class:`~obliviate.metrics.base.EvalOptions` fields).
        metrics: only these metrics (default: the benchmark's plan).
        seed: deals the subjects into requests.
        out: the protocol folder (``OUT/request-i/``, ``OUT/protocol.json``); None keeps it in memory.
        resume: continue an interrupted protocol in ``out`` (same everything only).
        overwrite: replace what ``out`` holds.
        progress: show progress bars.
    """
    return _protocol("sequential", model, task, method, requests, options, reference, eval, metrics, seed, out,
                     resume, overwrite, progress)


def scale(
    model: Any,
    task: Any,
    method: str | None = None,
    /,
    *,
    sizes: list[int | float] | list[str] = (0.25, 0.5, 1.0),  # type: ignore[assignment]
    options: dict[str, Any] | None = None,
    reference: Any = None,
    eval: dict[str, Any] | None = None,
    metrics: str | list[str] | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Protocol:
    """Unlearn nested forget sets of growing size, each from the original model (MUSE scalability).

    ``sizes`` are numbers of subjects (``[1, 2, 4]``), fractions of them (``[0.25, 0.5, 1.0]``),
    or the benchmark's own splits (``["scal_forget_1", ..., "scal_forget_4"]``); the other
    arguments are those of :func:`sequential`.
    """
    return _protocol("scale", model, task, method, list(sizes), options, reference, eval, metrics, seed, out,
                     resume, overwrite, progress)


def _protocol(
    kind: str, model: Any, task: Any, method: str | None, steps_spec: Any, options: dict[str, Any] | None,
    reference: Any, eval_options: dict[str, Any] | None, metrics: Any, seed: int, out: Any, resume: bool,
    overwrite: bool, progress: bool,
) -> Protocol:
    from obliviate.benchmarks.load import load_benchmark
    from obliviate.config import build
    from obliviate.data.task import UnlearningTask
    from obliviate.evaluation import plan_metrics
    from obliviate.metrics.base import EvalOptions
    from obliviate.runs.evaluate_run import evaluate
    from obliviate.runs.plan import plan_unlearn
    from obliviate.runs.unlearn import run_unlearn

    if isinstance(steps_spec, str) or (isinstance(steps_spec, list) and len(steps_spec) > 1
                                       and all(isinstance(x, str) and len(x) == 1 for x in steps_spec)):
        what = "requests" if kind == "sequential" else "sizes"
        raise ConfigError(
            f"{what} is a number or a list ([1, 2, 4], [0.25, 0.5, 1.0] or split names), not the string "
            f"{''.join(steps_spec)!r}; on the command line --{what} takes the comma-separated form"
        )
    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"options are an option tree such as {{'train': {{'lr': 1e-4}}}}, not {options!r}")
    if eval_options is not None and not isinstance(eval_options, dict):
        raise ConfigError(f"eval options are a mapping of EvalOptions fields, not {eval_options!r}")
    options = dict(options or {})
    builder = options.pop("benchmark", None) or {}
    if not isinstance(builder, dict):
        raise ConfigError("benchmark options are a mapping of the builder's options, e.g. {'n_people': 18}")
    if isinstance(task, UnlearningTask):
        if builder:
            raise ConfigError("benchmark options apply to a registered benchmark's name, not to a loaded task")
        full = task
    else:
        full = load_benchmark(str(task), **builder)
    full.check_items()
    requests = split_requests(full, steps_spec, seed) if kind == "sequential" else growing_sets(full, steps_spec, seed)
    require_model(model)
    model_spec = str(model.source) if is_loaded(model) else str(model)
    model_path = model_folder(model)  # a missing model fails here, before anything runs
    ref = load_reference(reference) if reference is not None else None
    build(EvalOptions, dict(eval_options or {}), "eval")  # a typo fails before anything trains
    selected = [m for m in metrics.split(",") if m.strip()] if isinstance(metrics, str) else metrics
    plan_metrics(full, None, selected, ref)
    out_path = check_output(out, (model_path, benchmark_folder(task))) if out is not None else None
    # Every step's options and benchmark are checked (on the starting model) before the first one trains.
    plans = [plan_unlearn(model, request_task(full, req), method, options, out=None) for req in requests]
    first = plans[0]
    identity = {
        "protocol": kind,
        "model": model_spec,
        "benchmark": full.name,
        "benchmark_fingerprint": full.fingerprint(),
        "method": first.config()["method"],
        "options": {k: v for k, v in first.config().items() if k in ("train", "lora", "stop", "prompt_format")},
        "requests": [r.describe() for r in requests],
        "eval": dict(eval_options or {}),
        "metrics": metrics if metrics is None or isinstance(metrics, str) else list(metrics),
        "reference": ref.get("model") if ref else None,
        "seed": seed,
    }
    digest = identity_digest(identity)
    if out_path is not None:
        _check_protocol_output(out_path, digest, resume, overwrite)
    record: dict[str, Any] = {"schema": PROTOCOL_SCHEMA, **identity, "digest": digest, "status": "running", "steps": []}
    if out_path is not None:
        _write(out_path, record)

    steps: list[Step] = []
    current = model
    for req in requests:
        sub = request_task(full, req)
        step_out = out_path / req.name if out_path is not None else None
        start = current if kind == "sequential" else model
        plan = plan_unlearn(start, sub, method, options, out=step_out, resume=resume and step_out is not None and step_out.exists())
        loaded = start if is_loaded(start) else None
        run = run_unlearn(plan, loaded, progress=progress)
        if run.diverged:
            record["status"] = "diverged"
            record["steps"].append({**req.describe(), "status": "diverged", "run": req.name})
            if out_path is not None:
                _write(out_path, record)
            raise ConfigError(
                f"{kind} protocol step {req.name} diverged (its last good weights are in {step_out}); "
                "lower --train.lr or use fewer steps, then run the protocol again"
            )
        res = evaluate(run.model, full, reference=ref, out=step_out, metrics=metrics, options=dict(eval_options or {}))
        summary = step_summary(req, res, full)
        steps.append(Step(req, run, res, summary))
        record["steps"].append({**summary, "run": req.name if out_path is not None else None, "status": run.status})
        if out_path is not None:
            _write(out_path, record)
        current = run.model
    record["status"] = "completed"
    if out_path is not None:
        _write(out_path, record)
    return Protocol(kind, steps, record, out_path)


def step_summary(request: Request, res: RunRecord, task: UnlearningTask) -> dict[str, Any]:
    """A step's headline: every aggregate, and each per-item forget metric over the step's own items and the rest."""
    own = {r.id for r in request.forget}
    forget_ids = {r.id for r in task.forget}
    summary: dict[str, Any] = {
        "name": request.name, "items": len(request.forget), "subjects": len(request.subjects), "split": request.split,
        "aggregates": {k: res.aggregate(k) for k in res.metrics},
    }
    if own <= forget_ids:
        subsets: dict[str, dict[str, float | None]] = {}
        for key, entry in res.metrics.items():
            if not key.startswith("forget/") or not entry.get("item_ids"):
                continue
            values = res.per_item(key)
            mine = [v for i, v in values.items() if i in own and v is not None]
            rest = [v for i, v in values.items() if i not in own and v is not None]
            subsets[key] = {"unlearned": sum(mine) / len(mine) if mine else None, "rest": sum(rest) / len(rest) if rest else None}
        summary["forget_subsets"] = subsets
    return summary


def _check_protocol_output(out: Path, digest: str, resume: bool, overwrite: bool) -> None:
    """The shared resume / overwrite decision; a resume must continue the same protocol."""
    claim = decide_output(out, resume=resume, overwrite=overwrite, record=PROTOCOL_FILE)
    if claim == "resume":
        stored = Recorder(out, PROTOCOL_FILE, schema=PROTOCOL_SCHEMA).data
        if stored.get("digest") != digest:
            raise ConfigError(
                f"{out} holds a protocol with another model, benchmark, method, options or steps; "
                "resume only continues the same protocol (pass overwrite=True to replace it, or choose another out)"
            )
    elif claim == "overwrite":
        stored = Recorder(out, PROTOCOL_FILE, schema=PROTOCOL_SCHEMA).data
        steps = [str(s.get("run")) for s in stored.get("steps") or [] if isinstance(s, dict) and s.get("run")]
        names = [p.name for p in out.iterdir() if p.is_dir() and (p / "run.json").is_file()]
        clear_owned(out, (*steps, *names, f".{PROTOCOL_FILE}.lock"), record=PROTOCOL_FILE)


def _write(out: Path, record: dict[str, Any]) -> None:
    Recorder(out, PROTOCOL_FILE, schema=PROTOCOL_SCHEMA).replace(record)
