"""Carry out an unlearning plan and keep its record: the :class:`Run` object.

:func:`run_unlearn` never trains the caller's model object unless ``in_place`` is set, uses the
prompt format the model records, resumes only with the options the interrupted run recorded, moves
a replaced run folder aside before writing (never a half-old folder), and keeps the last good
weights of a run that diverged (its status is then ``diverged``).
"""

from __future__ import annotations

import copy
import platform
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError
from obliviate.record import RunRecord, read_run
from obliviate.record.recorder import Recorder, now

if TYPE_CHECKING:
    from obliviate.models.io import LoadedModel
    from obliviate.unlearning import UnlearnResult

from obliviate.runs.checks import clear_owned
from obliviate.runs.plan import UnlearnPlan

EXIT_DIVERGED = 3
"""Exit code of a run whose training diverged (its last good weights are saved)."""

FINISHED = ("completed", "stopped")
"""Statuses of a run whose model was saved at its end (nothing left to resume)."""

OWNED = ("model", "checkpoints")
"""What an unlearning run writes into its folder besides run.json (cleared by ``--overwrite``)."""

PACKAGES = ("torch", "transformers", "peft", "accelerate", "safetensors", "obliviate")

def check_resumable(plan: UnlearnPlan, previous: dict[str, Any]) -> None:
    """On resume, refuse options that differ from those the interrupted run recorded."""
    from obliviate.runs.checks import check_same_identity

    check_same_identity(previous.get("config"), plan.config())


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def record_header(plan: UnlearnPlan) -> dict[str, Any]:
    """What run.json says when an unlearning run starts (the recorder adds status "running")."""
    return {
        "kind": "unlearn",
        "config": plan.config(),
        "seed": plan.options.train.seed,
        "versions": package_versions(),
        "argv": plan.argv,
    }


def record_footer(
    plan: UnlearnPlan, lm: LoadedModel, formatter: Any, result: UnlearnResult, timings: dict[str, float], processes: int
) -> dict[str, Any]:
    """What run.json gains when training ends: status, model and benchmark identity, timings, log."""
    task, train = plan.task, result.train
    status = "diverged" if train.diverged else ("completed" if train.stopped in ("completed", "max_steps") else "stopped")
    return {
        "status": status,
        "finished_at": now(),
        "model": {
            "spec": plan.model_spec, "path": str(plan.model_path) if plan.model_path else lm.path, "source": lm.source,
            "output": str(plan.out / "model") if plan.out else None,
        },
        "benchmark": {
            "spec": plan.benchmark_spec,
            "name": task.name,
            "version": task.version,
            "fingerprint": task.fingerprint(),
            "metadata": task.metadata,
            "sizes": {"forget": len(task.forget), "retain": len(task.retain), "holdout": len(task.holdout)},
        },
        "prompt_format": formatter.style,
        "processes": processes,
        "timings": timings,
        "train": {
            "steps": train.steps, "stopped": train.stopped, "bf16": train.bf16, "attention": train.attention, "seconds": train.seconds,
            "log": train.log, "extra": dict(result.extra),
        },
    }


@dataclass
class Run:
    """An unlearning run: its plan, its record, and the unlearned model.

    Attributes:
        plan: the validated plan.
        record: run.json's data (also in memory when the run has no folder).
        result: what training did (None for a finished run found on disk).
    """

    plan: UnlearnPlan
    record: RunRecord
    result: UnlearnResult | None = None
    _model: LoadedModel | None = None

    @property
    def out(self) -> Path | None:
        return self.plan.out

    @property
    def model(self) -> LoadedModel:
        """The unlearned model (read back from ``RUN/model`` when it is not in memory)."""
        if self._model is None:
            from obliviate.models.io import load_model

            if self.out is None:
                raise ConfigError("this run kept no model: it was planned without an output folder and not run")
            self._model = load_model(self.out / "model")
        return self._model

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def exit_code(self) -> int:
        """0, or :data:`EXIT_DIVERGED` when training diverged."""
        return EXIT_DIVERGED if self.diverged else 0


def run_unlearn(plan: UnlearnPlan, model: LoadedModel | None = None, *, in_place: bool = False, progress: bool = True) -> Run:
    """Carry out a plan; returns the run (its record written to ``plan.out/run.json`` when given).

    Args:
        plan: from :func:`plan_unlearn`.
        model: the loaded model to unlearn (default: load ``plan.model_spec``).
        in_place: train ``model``'s own weights (default: a copy, so the caller's model is kept).
        progress: show a progress bar.
    """
    import time

    import torch
    from accelerate import PartialState

    from obliviate.models.io import load_model, save_model
    from obliviate.unlearning import train_method

    started = time.perf_counter()
    out = plan.out
    previous = read_run(out, missing_ok=True) if out is not None and plan.resume else {}
    check_resumable(plan, previous)
    if out is not None and previous.get("status") in FINISHED and (out / "model" / "config.json").is_file():
        return Run(plan, RunRecord(previous, out / "run.json"))
    state = PartialState(cpu=not torch.cuda.is_available())  # as the training loop's Accelerator
    state.wait_for_everyone()  # every process has validated before any of them writes
    main = state.is_main_process
    checkpoints = out / "checkpoints" if out is not None else None
    recorder = Recorder(out if main else None)
    if main and out is not None:
        if plan.overwrite:
            clear_owned(out, OWNED)
            recorder = Recorder(out)
        out.mkdir(parents=True, exist_ok=True)
    recorder.start(record_header(plan))
    state.wait_for_everyone()
    if plan.resume and checkpoints is not None and not (checkpoints / "last").is_dir() and main:
        print(f"no checkpoint in {checkpoints}: starting from the first step", file=sys.stderr)

    with recorder.failing():
        t0 = time.perf_counter()
        if model is None:
            lm = load_model(plan.model_spec)
        else:
            lm = model if in_place else replace(model, model=copy.deepcopy(model.model))
        formatter = lm.formatter(plan.options.prompt_format)
        timings = {"load": time.perf_counter() - t0}
        t0 = time.perf_counter()
        result = train_method(
            lm.model, lm.tokenizer, plan.task, plan.method, plan.options.train,
            formatter=formatter, lora=plan.options.lora, stop=plan.options.stop,
            checkpoint_dir=checkpoints, resume=plan.resume, progress=progress and main,
            final_checkpoint=False,  # the model is saved next; checkpoints exist only to resume mid-run
        )
        timings["unlearn"] = time.perf_counter() - t0
        meta = {"prompt_format": formatter.style, "unlearned_with": plan.method.name}
        if main:
            if out is not None:
                t0 = time.perf_counter()
                save_model(result.model, lm.tokenizer, out / "model", overwrite=True, meta=meta)
                timings["save"] = time.perf_counter() - t0
            timings["total"] = time.perf_counter() - started
            recorder.merge(record_footer(plan, lm, formatter, result, timings, state.num_processes))
            if out is not None and not result.train.diverged and checkpoints is not None:
                shutil.rmtree(checkpoints, ignore_errors=True)  # the saved model supersedes the checkpoint
    data = recorder.data if main else {}
    state.wait_for_everyone()
    where = str(out / "model") if out is not None else lm.source
    # In memory only, the unlearned weights live in no folder: path None (not the input's folder,
    # whose files would otherwise identify it to a resumed evaluation).
    unlearned = replace(lm, model=result.model, source=where, path=where if out is not None else None,
                        meta={**(lm.meta or {}), **meta})
    return Run(plan, RunRecord(data, out / "run.json" if out is not None else None), result, unlearned)


def summary_lines(run: Run) -> list[tuple[str, bool]]:
    """What to tell the user about a run: (line, is_error) pairs."""
    lines: list[tuple[str, bool]] = []
    if run.result is None:
        return [(f"{run.out} already holds a finished run ({run.status}); nothing to resume", False)]
    train, name = run.result.train, run.plan.method.name
    if train.log:
        first, last = train.log[0], train.log[-1]
        parts = [f"{k} {first[k]:.3f} -> {last[k]:.3f}" for k in ("forget_nll", "retain_nll") if k in first and k in last]
        lines.append((f"{name}: {train.steps} steps in {train.seconds:.1f} s; " + ", ".join(parts), False))
    if train.diverged:
        where = f"were saved to {run.out / 'model'}" if run.out else "are the returned model"
        lines.append((f"error: training diverged ({train.stopped}). The last good weights {where}; lower "
                      "--train.lr or keep --train.max_grad_norm on, and rerun with --overwrite.", True))
    elif train.stopped not in ("completed", "max_steps"):
        lines.append((train.stopped, False))
    if run.out is not None:
        lines.append((f"wrote {run.out / 'model'} and {run.out / 'run.json'}", False))
    return lines
