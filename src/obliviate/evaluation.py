"""Run a benchmark's metric plan with shared, cached forward passes, resumably.

:func:`evaluate` (1) resolves the plan into metrics, adding what they depend on and checking the
reference before any forward pass; (2) gathers every pending metric's (prompt, answer) pairs and
scores them in ONE call of a :class:`~obliviate.scoring.CachedScorer` (vocabulary statistics on
when any metric needs them); (3) generates once per (max_new_tokens, stop strings) group; (4)
computes each metric as soon as its generations and dependencies are there, and writes run.json
atomically after each stage. Metrics already in the run's results are skipped, so an interrupted
evaluation resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from obliviate.benchmarks import spec as _spec
from obliviate.data.records import record_kind
from obliviate.data.task import CORE_SPLITS, UnlearningTask
from obliviate.errors import ConfigError
from obliviate.metrics import METRICS
from obliviate.metrics.base import (
    EvalContext,
    EvalOptions,
    Metric,
    MetricSkipped,
    group_generations,
)
from obliviate.models.io import LoadedModel, placement
from obliviate.record import Recorder, Results, RunRecord, load_reference, read_run, run_file
from obliviate.record.identity import check_same_evaluation, evaluation_identity
from obliviate.record.store import merge_metrics, metric_entry
from obliviate.scoring import CachedScorer, ModelScorer, Scorer, scorer_precision
from obliviate.scoring.shard import Shard, current_shard

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EvalPlan:
    """Resolved metrics (dependencies first), the ones that cannot run and why, the plan's name."""

    metrics: list[Metric]
    skipped: dict[str, str]
    name: str


def parse_key(key: str) -> tuple[str | None, str]:
    """``"forget/rouge"`` -> ``("forget", "rouge")``; ``"forget_quality"`` -> ``(None, ...)``."""
    split, _, name = key.rpartition("/")
    return (split or None), name


def build_metric(key: str) -> Metric:
    """The metric instance of a key (the name may be an alias); unknown names get "did you mean"."""
    split, name = parse_key(key)
    return METRICS.get(name)(split)


def plan_keys(task: UnlearningTask, plan: str | Sequence[str] | None) -> tuple[str, list[str]]:
    """The plan's name and keys. None picks the plan of the task's benchmark spec (else ``fictional``'s).

    A name picks that registered benchmark's plan. Named plans also get ``SPLIT/mcq_accuracy`` for
    every multiple-choice split of the task.
    """
    from obliviate.benchmarks import BENCHMARKS

    if plan is not None and not isinstance(plan, str):
        return "custom", list(plan)
    name = plan or str(task.metadata.get("benchmark", ""))
    if name not in BENCHMARKS:
        if plan is not None:
            from obliviate.registry import suggest

            names = BENCHMARKS.names()
            raise ConfigError(f"unknown plan {plan!r}.{suggest(plan, names)} Plans: {', '.join(names)}.")
        name = "fictional"
    spec = _spec.benchmark_spec(name)
    mcq = [f"{s}/mcq_accuracy" for s, recs in task.all_splits().items() if recs and record_kind(recs[0]) == "mcq"]
    return spec.name, list(spec.plan) + mcq


def _select(
    keys: list[str], selectors: Iterable[str], task: UnlearningTask
) -> tuple[list[str], set[str], dict[str, list[str]]]:
    """The keys picked by ``--metrics``: full keys (``forget/rouge``) or names (``rouge``).

    Returns the chosen keys, the ones that must run (a full key, or the name of a metric without
    a split), and for each name given without a split the plan keys it picked: like the plan
    itself, such a name skips the splits the task lacks, and fails only when none can run.
    """
    chosen: list[str] = []
    required: set[str] = set()
    by_name: dict[str, list[str]] = {}
    for sel in (s.strip() for s in selectors):
        if not sel:
            continue
        split, name = parse_key(sel)
        canonical = METRICS.canonical(name)
        if split is not None:
            task.split(split)  # a clear error listing the splits
            chosen.append(f"{split}/{canonical}")
            required.add(chosen[-1])
            continue
        matches = [k for k in keys if parse_key(k)[1] == canonical]
        if not matches and not METRICS.get(canonical).takes_split:
            matches = [canonical]
        if not matches:
            raise ConfigError(
                f"metric {canonical!r} is not in this plan; name its split, e.g. forget/{canonical} "
                f"(splits: {', '.join(task.all_splits())})"
            )
        if any(parse_key(k)[0] is not None for k in matches):
            by_name.setdefault(sel, []).extend(matches)
        else:
            required.update(matches)
        chosen.extend(matches)
    return chosen, required, by_name


def _check_reference_identity(task: UnlearningTask, reference: Mapping[str, Any]) -> None:
    """Refuse a reference evaluated on another benchmark: by its name and version first, then by
    the content of its forget, retain and holdout sets when it recorded it (evaluation-only splits
    may differ). Both messages name both benchmarks."""
    info = RunRecord(dict(reference)).eval_info
    ours = f"{task.name!r} (version {task.version or '?'})"
    for field, mine, theirs in (("benchmark", task.name, info.benchmark),
                                ("benchmark version", task.version, info.benchmark_version)):
        if theirs and mine and theirs != mine:
            raise ConfigError(
                f"the reference was evaluated on another benchmark: its {field} is {theirs!r}, this "
                f"run's benchmark is {ours}; evaluate the retain-only model on the same prepared "
                "benchmark"
            )
    core = info.identity.get("core")
    if isinstance(core, str) and len(core) == 64 and core != task.fingerprint(CORE_SPLITS):
        raise ConfigError(
            f"the reference was evaluated on another benchmark: {info.benchmark or '?'!r} with other "
            f"content than this run's {ours} (same name, another seed, size or split); evaluate "
            "the retain-only model on the same prepared benchmark"
        )


def plan_metrics(
    task: UnlearningTask,
    plan: str | Sequence[str] | None = None,
    metrics: Iterable[str] | None = None,
    reference: Mapping[str, Any] | None = None,
) -> EvalPlan:
    """Resolve and check a plan before any model loads.

    Plan entries whose data or reference is absent are skipped with a reason; metrics named in
    ``metrics`` must be able to run. A given reference that lacks what a metric reads is an error.

    Raises:
        ConfigError: an unknown metric or plan, a selected metric that cannot run, or a reference
            run of another benchmark or without the per-item values a metric needs.
    """
    name, keys = plan_keys(task, plan)
    explicit: set[str] = set()
    by_name: dict[str, list[str]] = {}
    if metrics is not None:
        # a name's keys may skip like the plan's; a full key (or a name without a split) must run
        keys, explicit, by_name = _select(keys, metrics, task)
        if not keys:
            raise ConfigError("--metrics selected nothing; name metrics like rouge or forget/rouge")
    if reference is not None:
        _check_reference_identity(task, reference)
    ordered: dict[str, Metric] = {}

    def add(key: str) -> None:
        metric = build_metric(key)
        if metric.key in ordered:
            return
        for dep in metric.depends(task):
            add(dep)
        ordered[metric.key] = metric

    for key in keys:
        add(key)
    skipped: dict[str, str] = {}
    ref = dict(reference) if reference is not None else None
    for key, metric in ordered.items():
        reason = metric.missing(task, ref)
        if reason is None:
            lost = [d for d in metric.depends(task) if d in skipped]
            reason = f"needs {lost[0]}, which cannot run ({skipped[lost[0]]})" if lost else None
        if reason is not None:
            if key in explicit:
                raise ConfigError(f"metric {key} cannot run: {reason}")
            skipped[key] = reason
        elif ref is not None and metric.uses_reference:
            metric.check_reference(task, ref)
    for sel, picked in by_name.items():
        if picked and all(k in skipped for k in picked):
            reasons = "; ".join(f"{k}: {skipped[k]}" for k in dict.fromkeys(picked))
            raise ConfigError(f"metric {sel} cannot run on any split of this plan ({reasons})")
    return EvalPlan(list(ordered.values()), skipped, name)


def make_scorer(
    source: Any, options: EvalOptions, model: Any = None, shard: Shard | None = None
) -> tuple[CachedScorer, Any, str]:
    """A CachedScorer over a Scorer or a LoadedModel (its batches split by ``shard``), the model for
    GradNorm (or None), a name."""
    from obliviate.scoring.vllm import with_backend

    if isinstance(source, Scorer):
        with_backend(source, None, options.backend, options.vllm_gpu_memory)  # a scorer generates itself: hf only
        cached = source if isinstance(source, CachedScorer) else CachedScorer(source)
    elif isinstance(source, LoadedModel):
        # A LoadedModel knows the prompt format it was fine-tuned with; "auto" uses it.
        formatter = source.formatter(options.prompt_format)
        bf16 = {"auto": None, "bf16": True, "fp32": False}[options.precision]
        scorer = ModelScorer(source.model, source.tokenizer, formatter, batch_size=options.batch_size, bf16=bf16, shard=shard)
        cached = CachedScorer(with_backend(scorer, source, options.backend, options.vllm_gpu_memory))
        model = source.model if model is None else model
    else:
        raise ConfigError(
            f"evaluate() takes a Scorer or a LoadedModel (obliviate.models.io.load_model), not {type(source).__name__}"
        )
    if model is None and type(cached.inner) is ModelScorer:  # a guard's model is not the scored model
        model = cached.inner.model
    name = str(getattr(source, "source", "") or type(getattr(cached, "inner", cached)).__name__)
    return cached, model, name


def _without_results(data: dict[str, Any]) -> dict[str, Any]:
    """Run data without the keys an evaluation writes (for ``overwrite``)."""
    return {k: v for k, v in data.items() if k not in ("metrics", "generations", "skipped")}


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


class _Writer:
    """Accumulates results and flushes them through the run's recorder (or keeps them in memory)."""

    def __init__(self, out: str | os.PathLike | None, data: dict[str, Any]) -> None:
        self.recorder = Recorder(run_file(out).parent) if out is not None else None
        self.data = data
        self.entries: dict[str, dict[str, Any]] = {}
        self.generations: dict[str, dict[str, str]] = {}
        self.skipped: dict[str, str] = {}

    def flush(self) -> None:
        entries, gens, skipped, info = self.entries, self.generations, self.skipped, self.data["eval"]
        self.data = merge_metrics(self.data, entries, gens, skipped)
        if self.recorder is not None:
            self.data = self.recorder.update(
                lambda d: {"kind": "eval", **merge_metrics(d, entries, gens, skipped), "eval": info}
            )
        self.entries, self.generations, self.skipped = {}, {}, {}


def run_metrics(
    scorer_or_model: Any,
    task: UnlearningTask,
    plan: str | Sequence[str] | None = None,
    reference: str | os.PathLike | Mapping[str, Any] | Results | None = None,
    out: str | os.PathLike | None = None,
    metrics: Iterable[str] | None = None,
    options: EvalOptions | None = None,
    *,
    model: Any = None,
    overwrite: bool = False,
) -> Results:
    """Evaluate a model (or any Scorer) on a task's metric plan.

    Args:
        scorer_or_model: a Scorer (wrapped in a CachedScorer) or a LoadedModel.
        task: the benchmark task.
        plan: a registered benchmark's name (its spec's plan), a list of metric keys, or None (the task's benchmark plan).
        reference: the retain-only model's run (folder, run.json, data or Results); never a model.
        out: the run folder whose run.json receives the results (None: keep them in memory).
        metrics: evaluate only these (names like ``rouge`` or keys like ``forget/rouge``) and what
            they depend on.
        options: evaluation settings.
        model: the model for the GradNorm attack (default: the one inside a plain model scorer).
        overwrite: drop the metrics already in ``out`` instead of resuming.

    Returns:
        The results: every metric of the plan, resumed ones included.
    """
    options = options or EvalOptions()
    options.validate(task)
    ref = load_reference(reference) if reference is not None else None
    setup = plan_metrics(task, plan, metrics, ref)
    shard = current_shard()  # launched processes share a model's batches and compute alike; the first writes
    scorer, model, model_name = make_scorer(scorer_or_model, options, model, shard)
    write_out = out if shard is None or shard.rank == 0 else None
    data = read_run(out, missing_ok=True) if out is not None else {}
    if overwrite:
        data = _without_results(data)
        if write_out is not None:
            Recorder(run_file(write_out).parent).update(_without_results)
    # Only a run folder can be resumed, so only then is the model fingerprinted (an in-memory
    # model's fingerprint hashes all its weights); the benchmark's content is always recorded.
    identity = evaluation_identity(scorer_or_model, task, options, with_model=out is not None)
    if data.get("metrics") and out is not None:
        check_same_evaluation(out, data.get("eval", {}).get("identity"), identity)
    seconds: dict[str, float] = {}
    data["eval"] = {
        "benchmark": task.name,
        "benchmark_version": task.version,
        "plan": setup.name,
        "options": dataclasses.asdict(options),
        # an absolute path, so the record still finds its reference from another working directory
        "reference": os.path.abspath(os.path.expanduser(reference)) if isinstance(reference, str | os.PathLike)
        else (None if ref is None else "given"),
        "model": model_name,
        "precision": scorer_precision(scorer),
        "processes": 1 if shard is None else shard.world,
        "placement": placement(model) if model is not None else None,  # {device: modules} (eval.device_map)
        "identity": identity,
        "seconds": seconds,
    }
    ctx = EvalContext(task, scorer, options, ref, dict(data.get("metrics", {})), model)
    pending = _pending(setup, ctx.results)
    if shard is not None:  # all have read run.json before the first process writes to it
        shard.barrier()
    writer = _Writer(write_out, data)
    writer.skipped.update({k: v for k, v in setup.skipped.items() if k not in ctx.results})
    log.info("evaluating %d metrics (%d already done, %d skipped)", len(pending), len(ctx.results), len(setup.skipped))
    try:
        _run(ctx, pending, writer, seconds)
    finally:
        writer.flush()
    return Results(writer.data, run_file(out) if out is not None else None)


def is_complete(
    task: UnlearningTask,
    out: str | os.PathLike,
    plan: str | Sequence[str] | None = None,
    reference: str | os.PathLike | Mapping[str, Any] | Results | None = None,
) -> bool:
    """Whether ``out/run.json`` already holds every metric of the plan (so no model need load).

    A metric the plan skips (its data or reference is absent) counts as done, and so does one the
    stored evaluation recorded as skipped (``eval.gradnorm_items 0``: a skip of the options it ran
    with, which the caller keys the folder by).
    """
    data = read_run(out, missing_ok=True)
    ref = load_reference(reference) if reference is not None else None
    return not _pending(plan_metrics(task, plan, None, ref), {**data.get("skipped", {}), **data.get("metrics", {})})


def _pending(setup: EvalPlan, done: Mapping[str, Any]) -> list[Metric]:
    """The plan's metrics neither in ``done`` nor skipped by the plan."""
    return [m for m in setup.metrics if m.key not in done and m.key not in setup.skipped]


def _run(ctx: EvalContext, pending: list[Metric], writer: _Writer, seconds: dict[str, float]) -> None:
    """Score, generate and compute ``pending`` in stages, flushing after each stage."""
    t0 = time.perf_counter()
    asked = {m.key: m.requests(ctx) for m in pending}
    requests = _unique(r for rs in asked.values() for r in rs)
    if requests:  # the vocabulary moments only for the requests of the metrics that read them
        ctx.scorer.score(requests, vocab_stats={r for m in pending if m.vocab_stats for r in asked[m.key]})
    seconds["score"] = time.perf_counter() - t0
    needs = {m.key: set(group_generations(m.prompts(ctx))) for m in pending}
    groups: dict[tuple[int, tuple[str, ...]], list[str]] = {}
    for m in pending:
        for r in m.prompts(ctx):
            groups.setdefault((r.max_new_tokens, tuple(r.stop)), []).append(r.prompt)
    fetched: set[tuple[int, tuple[str, ...]]] = set()
    remaining = list(pending)
    for stage in [None, *groups]:
        if stage is not None:
            t0 = time.perf_counter()
            ctx.scorer.generate(_unique(groups[stage]), max_new_tokens=stage[0], stop=stage[1])
            fetched.add(stage)
            seconds[f"generate {stage[0]} tokens"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        last = stage == (list(groups)[-1] if groups else None)
        for m in list(remaining):
            waiting = {r.key for r in remaining} & set(m.depends(ctx.task))
            if last or (needs[m.key] <= fetched and not waiting):
                remaining.remove(m)
                _compute(ctx, m, writer)
        seconds["compute"] = seconds.get("compute", 0.0) + time.perf_counter() - t0
        writer.flush()


def _compute(ctx: EvalContext, metric: Metric, writer: _Writer) -> None:
    """Compute one metric into ``ctx.results`` and the writer (or record why it was skipped)."""
    lost = [d for d in metric.depends(ctx.task) if d not in ctx.results]
    if lost:
        writer.skipped[metric.key] = f"needs {lost[0]}, which was not computed"
        return
    t0 = time.perf_counter()
    try:
        result = metric.compute(ctx)
    except MetricSkipped as e:
        writer.skipped[metric.key] = str(e)
        log.info("skipped %s: %s", metric.key, e)
        return
    entry = metric_entry(metric, result)
    ctx.results[metric.key] = entry
    writer.entries[metric.key] = entry
    if result.generations and metric.split:
        writer.generations.setdefault(metric.split, {}).update(result.generations)
    log.info("%s = %.4g (%.1f s)", metric.key, result.aggregate, time.perf_counter() - t0)

