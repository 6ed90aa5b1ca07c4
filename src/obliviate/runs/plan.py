"""Plan an unlearning run: every option, the model, the benchmark and the output, checked first.

:func:`plan_unlearn` loads no model. The method's ``train_defaults`` fill the training options the
caller left unset. The :class:`UnlearnPlan` it returns is what :func:`obliviate.runs.run_unlearn`
carries out and what run.json records (:meth:`UnlearnPlan.config`); a resume compares it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from obliviate.errors import ConfigError, ObliviateError
from obliviate.models.lora import LoraOptions
from obliviate.record import read_run
from obliviate.training.loop import TrainConfig
from obliviate.unlearning import StopOptions

if TYPE_CHECKING:
    from obliviate.data.task import UnlearningTask
    from obliviate.methods.base import UnlearnMethod
    from obliviate.models.io import LoadedModel


@dataclass
class UnlearnOptions:
    """Every option of an unlearning run besides the method's own."""

    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation (the method's train_defaults fill unset fields)
    lora: LoraOptions = field(default_factory=LoraOptions)  # low-rank adapters instead of full fine-tuning
    stop: StopOptions = field(default_factory=StopOptions)  # stopping rules on the logged losses
    benchmark: dict[str, Any] = field(default_factory=dict)  # options of a registered benchmark's builder
    prompt_format: Literal["auto", "chat", "plain"] = "auto"  # chat, plain or auto (the model's own recorded format, else its template)


@dataclass
class UnlearnPlan:
    """A fully validated unlearning run, built before anything heavy loads."""

    method: UnlearnMethod  # the method with its validated config
    options: UnlearnOptions
    model_spec: str  # the model as the caller named it
    model_path: Path | None  # its folder, when it is one
    benchmark_spec: str  # the benchmark as the caller named it
    task: UnlearningTask
    out: Path | None  # the run folder (None: keep everything in memory)
    resume: bool = False
    overwrite: bool = False
    argv: list[str] | None = None  # the command line, when the run came from one

    def config(self) -> dict[str, Any]:
        """The resolved configuration as plain data (what run.json records and a resume compares)."""
        from obliviate.config import to_dict

        options = to_dict(self.options)
        return {
            "method": {"name": self.method.name, **to_dict(self.method.config)},
            "train": options["train"],
            "lora": options["lora"],
            "stop": options["stop"],
            "prompt_format": options["prompt_format"],
            "model": self.model_spec,
            "benchmark": self.benchmark_spec,
            "benchmark_options": options["benchmark"],
        }


def plan_unlearn(
    model: str | os.PathLike | LoadedModel,
    benchmark: str | os.PathLike | UnlearningTask,
    method: str | None = None,
    options: dict[str, Any] | None = None,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    argv: list[str] | None = None,
) -> UnlearnPlan:
    """Validate an unlearning run; load no model.

    Args:
        model: a model spec (folder, registered name, hub id) or a loaded model.
        benchmark: a prepared benchmark folder, a registered benchmark name, or a task.
        method: the method's name (or ``options["method"]["name"]``).
        options: an option tree: ``method``, ``train``, ``lora``, ``stop``, ``benchmark``,
            ``prompt_format`` (what ``--config`` and dotted flags build).
        out: the run folder; it must be new or empty unless ``resume`` or ``overwrite``.
        resume: continue an interrupted run in ``out`` (same options only).
        overwrite: replace what ``out`` holds.
        argv: the command line to record.

    Raises:
        ConfigError: an unknown or invalid option, method or benchmark.
        OutputExistsError: ``out`` exists, or is one of the inputs.
    """
    from obliviate.models.checks import check_prompt_format
    from obliviate.models.io import resolve_model
    from obliviate.runs.checks import (
        benchmark_folder,
        check_output,
        decide_output,
        model_folder,
        require_model,
    )

    require_model(model)
    chosen, built = resolve_options(method, options)
    if isinstance(model, str | os.PathLike):
        model_spec = str(model)
        check_prompt_format(resolve_model(model), built.prompt_format)
    else:  # a LoadedModel (require_model refused anything else)
        model_spec = str(model.source)
        check_prompt_format(model, built.prompt_format)
    model_path = model_folder(model)
    task, bench_spec, built.benchmark = _task(benchmark, built.benchmark)
    task.check_items()
    out_path, claim = None, "new"
    if out is not None:
        out_path = check_output(out, (model_path, benchmark_folder(benchmark)))
        claim = decide_output(out_path, resume=resume, overwrite=overwrite, replaceable=_failed_stub(out_path))
    return UnlearnPlan(chosen, built, model_spec, model_path, bench_spec, task, out_path, claim == "resume",
                       claim == "overwrite", argv)


def _failed_stub(out: Path) -> bool:
    """Whether ``out`` holds only the record of a run that failed before it saved anything.

    Such a folder (a run.json saying "running", "failed" or "interrupted", no checkpoint, no model) is replaced
    without ``--overwrite``, so that the corrected command just works.
    """
    if not out.is_dir():
        return False
    names = {p.name for p in out.iterdir()}
    if not names or not names <= {"run.json", ".run.json.lock"} or "run.json" not in names:
        return False
    try:
        return read_run(out).get("status") in ("running", "failed", "interrupted")
    except ObliviateError:
        return False


def resolve_options(method: str | None, options: dict[str, Any] | None) -> tuple[UnlearnMethod, UnlearnOptions]:
    """The method with its config and the run's options, validated (no model, no benchmark).

    The method's ``train_defaults`` fill the ``train`` fields that ``options`` leaves unset.
    """
    from obliviate.config import build
    from obliviate.methods.base import METHODS, resolve_method

    tree = dict(options or {})
    method_tree = tree.pop("method", None) or {}
    if not isinstance(method_tree, dict):
        raise ConfigError("method is a group of options; set its fields, e.g. --method.beta 0.1")
    method_tree = dict(method_tree)
    name = method or method_tree.pop("name", None)
    yaml_name = method_tree.pop("name", None)
    if method and yaml_name and yaml_name != method:
        raise ConfigError(
            f"the method is named twice: {method!r} (--method) and {yaml_name!r} (method.name in the options or "
            "--config); keep one"
        )
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"the method is a registered method's name such as 'npo', not {name!r}")
    if not name:
        raise ConfigError(f"choose a method (--method NAME); available: {', '.join(METHODS.names())}")
    chosen = resolve_method(name, method_tree)
    train_tree = tree.pop("train", None) or {}
    if not isinstance(train_tree, dict):
        raise ConfigError("train is a group of options; set its fields, e.g. --train.lr 1e-4")
    built = build(UnlearnOptions, {**tree, "train": {**type(chosen).train_defaults, **train_tree}})
    check_compatible(chosen, built)
    return chosen, built


def _task(benchmark: Any, options: dict[str, Any]) -> tuple[UnlearningTask, str, dict[str, Any]]:
    """The task, its spec as recorded and its typed builder options."""
    from obliviate.data.task import UnlearningTask

    if isinstance(benchmark, UnlearningTask):
        if options:
            raise ConfigError("benchmark options apply to a registered benchmark's name, not to a loaded task")
        source = getattr(benchmark, "source", "") or benchmark.name
        return benchmark, str(source), dict(getattr(benchmark, "source_options", {}) or {})
    if not isinstance(benchmark, str | os.PathLike):
        raise ConfigError(
            "the benchmark is a prepared benchmark folder, a registered benchmark's name, or a task from "
            f"ob.load_benchmark(...), not {type(benchmark).__name__}"
        )
    task, typed = load_task(str(benchmark), options)
    return task, str(benchmark), typed


def load_task(spec: str, builder_options: dict[str, Any]) -> tuple[UnlearningTask, dict[str, Any]]:
    """A prepared benchmark folder, or a registered benchmark built with its options
    (:func:`obliviate.benchmarks.load_benchmark`, the one resolver of every command).

    Returns:
        ``(task, the builder options converted to their annotated types)``.
    """
    from obliviate.benchmarks.load import load_benchmark

    task = load_benchmark(spec, **builder_options)
    return task, dict(task.source_options)


def check_compatible(method: UnlearnMethod, options: UnlearnOptions) -> None:
    """Reject option combinations that cannot work, before loading anything."""
    lora = options.lora
    if lora.enabled and lora.init == "fila" and not method.uses_retain:
        raise ConfigError(
            f"lora.init fila needs forget/retain pairs (a retain split), and method {method.name!r} uses no "
            "retain data; use a method with a retain term or --lora.init default"
        )
    if lora.enabled and lora.init == "fila" and lora.save == "adapter":
        raise ConfigError("lora.init fila rewrites the base weights, so --lora.save adapter cannot reproduce the model; use merged")
