"""The Python API: everything the command line does, one call each, with the same validation.

    import obliviate as ob

    task = ob.load_benchmark("fictional", n_people=18)      # or a prepared folder, or "tofu", path=...
    model = ob.load_model("prep/target")
    run = ob.unlearn(model, task, "npo", method={"beta": 0.1}, train={"lr": 1e-4}, out="runs/npo")
    res = ob.evaluate(run.model, task, reference="runs/retain", out="runs/npo")
    res["forget_quality"], res.per_item("forget/rouge")
    ob.report(["runs/retain", "runs/npo"], out="report.html")

Each function checks its options before any model loads and writes the same files as its command
(``obliviate unlearn`` and :func:`unlearn` write identical run.json, apart from timings and argv).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError

if TYPE_CHECKING:
    from obliviate.data.task import UnlearningTask
    from obliviate.models.io import LoadedModel
    from obliviate.record import RunRecord
    from obliviate.runs import Run

from obliviate.benchmarks.load import load_benchmark
from obliviate.runs import evaluate
from obliviate.runs.protocols import scale, sequential

__all__ = [
    "attack", "demo", "evaluate", "load_benchmark", "load_model", "load_run", "prepare", "report", "scale", "sequential",
    "unlearn",
]


def load_model(spec: str | os.PathLike, *, trust_remote_code: bool = False) -> LoadedModel:
    """A model and its tokenizer from a registered name (``tiny``, ``smollm2-135m``), a folder or a hub id."""
    from obliviate.models.io import load_model as load

    return load(spec, trust_remote_code=trust_remote_code)


def load_run(path: str | os.PathLike) -> RunRecord:
    """The record of a run folder (or its run.json), in the current schema."""
    from obliviate.record import RunRecord

    return RunRecord.load(path)


def unlearn(
    model: str | os.PathLike | LoadedModel,
    task: str | os.PathLike | UnlearningTask,
    name: str | None = None,
    /,
    *,
    method: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    lora: dict[str, Any] | None = None,
    stop: dict[str, Any] | None = None,
    benchmark: dict[str, Any] | None = None,
    prompt_format: str | None = None,
    config: str | os.PathLike | dict[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    in_place: bool = False,
    progress: bool = True,
) -> Run:
    """Unlearn ``task``'s forget set from ``model`` with the method ``name``.

    Args:
        model: a loaded model (it is copied unless ``in_place``) or a model spec (loaded after
            every option has been checked).
        task: a task (:func:`load_benchmark`), a prepared benchmark folder or a registered name.
        name: the method (``obliviate ls methods``); may also be ``method={"name": ...}``.
        method: the method's options (``{"beta": 0.1}``).
        train: training options over the method's ``train_defaults`` (``{"lr": 1e-4}``).
        lora: LoRA options (``{"enabled": True, "r": 8}``).
        stop: stopping rules (``{"forget_loss_above": 5}``).
        benchmark: builder options when ``task`` is a registered benchmark's name.
        prompt_format: auto (the format the model records), chat or plain.
        config: a YAML file or option tree under the keyword options (as ``--config``).
        out: the run folder (``OUT/model``, ``OUT/run.json``); None keeps the run in memory.
        resume: continue an interrupted run in ``out`` (only with the same options).
        overwrite: replace what ``out`` holds.
        in_place: train the given model object itself.
        progress: show a progress bar.

    Returns:
        The run: ``run.model`` is the unlearned model, ``run.record`` its run.json.
    """
    from obliviate.config import load_yaml, merge
    from obliviate.runs import plan_unlearn, run_unlearn
    from obliviate.runs.checks import is_loaded

    if config is None:
        tree: dict[str, Any] = {}
    elif isinstance(config, dict):
        tree = dict(config)
    elif isinstance(config, str | os.PathLike):
        tree = load_yaml(config)
    else:
        raise ConfigError(f"config is a YAML file or a mapping of options, not {type(config).__name__}")
    given = {"method": method, "train": train, "lora": lora, "stop": stop, "benchmark": benchmark}
    for key, value in given.items():
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{key} options are a mapping such as {{'lr': 1e-4}}, not {value!r}")
    tree = merge(tree, {k: v for k, v in given.items() if v})
    if prompt_format is not None:
        tree["prompt_format"] = prompt_format
    plan = plan_unlearn(model, task, name, tree, out=out, resume=resume, overwrite=overwrite)
    loaded = model if is_loaded(model) else None
    return run_unlearn(plan, loaded, in_place=in_place, progress=progress)  # type: ignore[arg-type]


def attack(
    run: str | os.PathLike,
    attacks: str | list[str] = "all",
    /,
    *,
    options: dict[str, dict[str, Any]] | None = None,
    reference: str | os.PathLike | None = None,
    reference_model: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    benchmark: str | os.PathLike | None = None,
    verdict_metric: str | None = None,
    quantile: float = 0.95,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> RunRecord:
    """Attack a finished run's model and store the results in its run.json (``obliviate attack``).

    Each attack (``obliviate ls attacks``; ``"all"`` for the standard battery) is applied to the
    unlearned model and to the retain-only model alike, and the run's per-item forget metrics are
    evaluated again on both. ``record.data["attacks"][label]`` holds them, and
    ``record.data["attack_verdict"]`` each forget item's verdict (removed, suppressed or kept).

    Args:
        run: the run folder (evaluated, with ``RUN/model`` or the model its evaluation scored).
        attacks: ``"relearn,quantize"``, a list of names, or ``"all"``.
        options: per attack, its options: ``{"relearn": {"steps": 50, "lr": 1e-4}}``.
        reference: the retain-only model's run (default: the run's evaluation reference).
        reference_model: the retain-only model's folder (default: the model that run scored).
        model: the model to attack (default: ``RUN/model``).
        benchmark: the benchmark (default: the one the run records; its content must match).
        verdict_metric: the per-item score the verdict reads (default ``forget/prob``).
        quantile: the retain-only model's quantile an item must exceed to show a fact.
        seed: seeds every attack.
        overwrite: replace attacks stored with other options.
        progress: show progress bars.
    """
    from obliviate.config import build
    from obliviate.runs.attack_run import AttackRequest, plan_request, run_attack

    given = {"run": run, "attacks": attacks, "options": options or {}, "reference": reference,
             "reference_model": reference_model, "model": model, "benchmark": benchmark,
             "verdict_metric": verdict_metric, "quantile": quantile, "seed": seed, "overwrite": overwrite}
    request = build(AttackRequest, {k: v for k, v in given.items() if v is not None}, "attack")
    return run_attack(plan_request(request), progress=progress)


def report(
    runs: Iterable[str | os.PathLike], out: str | os.PathLike = "report.html", **options: Any
) -> dict[str, Path]:
    """Write one self-contained HTML report (with .json and .csv beside it) comparing runs.

    Options are those of :func:`obliviate.reporting.make_report` (``target``, ``retain``,
    ``benchmark``, ``title``, ...). Returns the written files by kind.
    """
    from obliviate.reporting import make_report

    if isinstance(runs, str | os.PathLike):
        runs = [runs]  # one run folder, not a sequence of characters
    return make_report(list(runs), out, **options)


def prepare(
    out: str | os.PathLike,
    *,
    benchmark: str = "fictional",
    model: str = "smollm2-135m",
    options: dict[str, Any] | None = None,
    config: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Build a benchmark and fine-tune the target and the retain-only model into ``out`` (``obliviate prepare``).

    ``options`` is an option tree over the model's defaults: ``{"train": {"epochs": 3},
    "benchmark": {"n_people": 18}, "rehearsal": 0}``; ``config`` a YAML file under it. Returns the
    summary that ``out/prepare.json`` records.
    """
    from obliviate.runs.prepare import prepare as run_prepare
    from obliviate.runs.prepare import prepare_config

    settings = prepare_config(model, benchmark, options, config)
    return run_prepare(benchmark, model, out, settings, resume=resume, overwrite=overwrite, progress=progress)


def demo(
    out: str | os.PathLike = "obliviate-demo",
    *,
    methods: Iterable[str] = ("grad_diff", "npo", "simnpo"),
    model: str = "smollm2-135m",
    forget: str = "forget10",
    profile: str = "fast",
    method_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The demo (``obliviate demo``): prepare or reuse, evaluate, unlearn with each method, report.

    Returns the report's path, the run folders and the stage timings.
    """
    from obliviate.runs.demo import DemoConfig, run_demo

    cfg = DemoConfig(methods=tuple(methods), forget=forget, profile=profile, model=model,
                     method_options=dict(method_options or {}))
    return run_demo(cfg, Path(out))
