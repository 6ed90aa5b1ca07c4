"""Evaluate a model on a benchmark, with every input checked before the model loads."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError
from obliviate.record import Results

if TYPE_CHECKING:
    from obliviate.data.task import UnlearningTask

from obliviate.runs.plan import load_task


def evaluate(
    model: Any,
    benchmark: str | os.PathLike | UnlearningTask,
    reference: Any = None,
    out: str | os.PathLike | None = None,
    *,
    plan: str | list[str] | None = None,
    metrics: str | Iterable[str] | None = None,
    options: Any = None,
    benchmark_options: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Results:
    """Evaluate a model on a benchmark's metric plan, checking everything before the model loads.

    Args:
        model: a model spec (loaded onto this process's accelerator, :func:`~obliviate.models.io.default_device`), a loaded model (``run.model``) or any Scorer (an inference-time method).
        benchmark: a prepared benchmark folder, a registered benchmark name, or a task.
        reference: the retain-only model's run (folder, run.json, or its record); never a model.
        out: the run folder whose run.json receives the results (None: in memory only). A
            finished evaluation there is resumed: metrics already stored are not recomputed.
        plan: a benchmark's plan name or a list of metric keys (default: the benchmark's own).
        metrics: only these metrics (``"rouge,forget/prob"`` or a list) and what they need.
        options: :class:`~obliviate.metrics.base.EvalOptions` (used as given) or a mapping of its
            fields, over the benchmark's official settings (TOFU generates 200 tokens).
        benchmark_options: builder options when ``benchmark`` is a registered benchmark's name.
        overwrite: recompute the metrics already in ``out``.
    """
    from obliviate.benchmarks.spec import spec_of
    from obliviate.config import build
    from obliviate.data.task import UnlearningTask
    from obliviate.evaluation import plan_metrics, run_metrics
    from obliviate.metrics.base import EvalOptions
    from obliviate.models.checks import check_prompt_format
    from obliviate.models.io import default_device, load_model, resolve_model
    from obliviate.record import load_reference
    from obliviate.runs.checks import benchmark_folder, check_output, is_loaded, model_folder
    from obliviate.scoring import Scorer

    if options is not None and not isinstance(options, EvalOptions | dict):
        raise ConfigError(f"eval options are a mapping of EvalOptions fields, not {type(options).__name__}")
    if isinstance(options, dict):
        build(EvalOptions, dict(options), "eval")  # a typo fails before the benchmark is read
    if isinstance(benchmark, UnlearningTask):
        if benchmark_options:
            raise ConfigError("benchmark options apply to a registered benchmark's name, not to a loaded task")
        task = benchmark
    else:
        task = load_task(str(benchmark), dict(benchmark_options or {}))[0]
    task.check_items()
    if isinstance(options, EvalOptions):
        options.validate()
    else:  # the benchmark's official settings (TOFU: 200-token answers), the caller's over them
        spec = spec_of(task)
        options = build(EvalOptions, {**(dict(spec.eval_defaults) if spec else {}), **dict(options or {})}, "eval")
    options.validate(task)  # split names too (eval.uncapped), before the model loads
    ref = load_reference(reference) if reference is not None else None
    selected = [m for m in metrics.split(",") if m.strip()] if isinstance(metrics, str) else metrics
    plan_metrics(task, plan, selected, ref)  # fail fast, before the model loads
    if isinstance(model, str | os.PathLike):
        check_prompt_format(resolve_model(model), options.prompt_format, "--eval.prompt_format")
    elif is_loaded(model) or isinstance(model, Scorer):
        check_prompt_format(model, options.prompt_format, "--eval.prompt_format")
    else:
        raise ConfigError(
            "the model to evaluate is a model folder, a registered model's name, a hub id, a model loaded with "
            f"ob.load_model(...) or a Scorer, not {type(model).__name__}"
        )
    if out is not None:
        inputs = (model_folder(model) if not isinstance(model, Scorer) else None, benchmark_folder(benchmark))
        check_output(out, inputs, adds_only=True)  # an evaluation adds run.json's sections; it never clears
    if options.device_map != "none" and not isinstance(model, str | os.PathLike):
        raise ConfigError(
            "eval.device_map places a model given by name or folder as it loads; a loaded model (or scorer) stays "
            "where it is: pass the model's folder, or load it with obliviate.models.io.load_model(..., device_map=)"
        )
    if not isinstance(model, str | os.PathLike):
        return run_metrics(model, task, plan=plan, reference=reference, out=out,
                              metrics=selected, options=options, overwrite=overwrite)
    import tempfile

    # A model given by name runs on this process's accelerator, or spread over the devices by
    # eval.device_map; the weights no device holds wait in a temporary folder, removed afterwards.
    with tempfile.TemporaryDirectory(prefix="obliviate-offload-") as offload:
        if options.device_map == "none":
            loaded = load_model(model, device=default_device())
        else:
            loaded = load_model(model, device_map=options.device_map, max_memory=options.memory_limits(), offload_folder=offload)
        return run_metrics(loaded, task, plan=plan, reference=reference, out=out,
                              metrics=selected, options=options, overwrite=overwrite)
