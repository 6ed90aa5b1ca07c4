"""``obliviate unlearn``: run a training-based unlearning method on a model and save the result.

::

    obliviate unlearn --model prep/target --benchmark prep/benchmark --method npo --out runs/npo \\
        --method.beta 0.2 --train.lr 1e-4 --lora.enabled true --stop.forget_loss_above 5

writes ``runs/npo/model/`` (safetensors, atomically) and ``runs/npo/run.json`` (the resolved
configuration, package versions, seed, model and benchmark identity, timings, the training log and
why training stopped). Every option (method, train, lora, stop, benchmark) is validated before any
model loads, so a typo fails in a second with "did you mean". ``--config FILE.yaml`` holds any of
these options as a tree (``train: {lr: 1e-4}``); dotted flags win over it.

A run that diverges (non-finite loss or gradient) keeps the weights of its last good step, saves
them, records what happened in run.json and exits with :data:`EXIT_DIVERGED`.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from obliviate.errors import ConfigError, OutputExistsError
from obliviate.models.lora import LoraOptions
from obliviate.training.loop import TrainConfig
from obliviate.unlearning import StopOptions

EXIT_DIVERGED = 3
"""Exit code of a run whose training diverged (its last good weights are saved)."""

FINISHED = ("completed", "stopped")
"""run.json statuses of a run whose model was saved at its end (nothing left to resume)."""

STALE_KEYS = ("metrics", "generations", "skipped", "eval")
"""run.json keys describing an earlier model, dropped when a fresh run replaces that model."""

PACKAGES = ("torch", "transformers", "peft", "accelerate", "safetensors", "obliviate")


@dataclass
class UnlearnOptions:
    """Everything ``obliviate unlearn`` reads from --config and dotted flags, besides the method."""

    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation (the method's train_defaults fill unset fields)
    lora: LoraOptions = field(default_factory=LoraOptions)  # low-rank adapters instead of full fine-tuning
    stop: StopOptions = field(default_factory=StopOptions)  # stopping rules on the logged losses
    benchmark: dict[str, Any] = field(default_factory=dict)  # options of a registered benchmark's builder
    prompt_format: Literal["auto", "chat", "plain"] = "auto"  # chat, plain or auto (the model's own recorded format, else its template)


@dataclass
class Plan:
    """A fully validated run, built before anything heavy loads."""

    method: Any  # the UnlearnMethod instance with its validated config
    options: UnlearnOptions
    model_spec: str
    model_path: Path | None
    benchmark_spec: str
    task: Any
    out: Path

    def config(self) -> dict[str, Any]:
        """The resolved configuration as plain data (what run.json records and --resume compares)."""
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


def add_parser(sub: Any, name: str = "unlearn", help_text: str = "run an unlearning method on a model") -> argparse.ArgumentParser:
    """Register the ``unlearn`` subcommand."""
    p = sub.add_parser(
        name,
        help=help_text,
        description=help_text + ". Dotted options: --method.<field> (see `obliviate ls methods`), "
        "--train.<field> (lr, epochs, max_steps, batch_size, ...), --lora.<field> (enabled, r, alpha, "
        "targets, init, save), --stop.<field> (forget_loss_above, retain_loss_below), "
        "--benchmark.<builder option> for a registered benchmark.",
    )
    p.add_argument("--model", required=True, help="a model folder (e.g. prep/target), a registered model or a hub id")
    p.add_argument("--benchmark", required=True, help="a prepared benchmark folder (prep/benchmark) or a registered benchmark")
    p.add_argument("--method", help="a registered method (obliviate ls methods); may also come from --config as method.name")
    p.add_argument("--out", required=True, help="the run folder: OUT/model and OUT/run.json")
    p.add_argument("--config", help="a YAML file of options (dotted flags win over it)")
    p.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run from OUT/checkpoints (written every --train.save_every steps; removed once the model is saved)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--prompt-format", dest="prompt_format", choices=("auto", "chat", "plain"), help="prompt format (default auto)")
    return p


def option_tree(config_file: str | None, extra: list[str]) -> dict[str, Any]:
    """The YAML preset (if any) with the dotted flags merged over it."""
    from obliviate.config import load_yaml, merge, parse_dotted_args

    tree = load_yaml(config_file) if config_file else {}
    return merge(tree, parse_dotted_args(extra))


def build_plan(args: argparse.Namespace, extra: list[str]) -> Plan:
    """Validate every option, the model spec, the benchmark and the output; load no model."""
    import obliviate.methods  # noqa: F401  (registers the methods)
    from obliviate.config import build
    from obliviate.methods.base import METHODS, resolve_method
    from obliviate.models.io import check_output, resolve_model

    tree = option_tree(args.config, extra)
    method_tree = tree.pop("method", None) or {}
    if not isinstance(method_tree, dict):
        raise ConfigError("method is a group of options; set its fields, e.g. --method.beta 0.1")
    method_tree = dict(method_tree)
    name = args.method or method_tree.pop("name", None)
    method_tree.pop("name", None)
    if not name:
        raise ConfigError(f"choose a method with --method NAME; available: {', '.join(METHODS.names())}")
    method = resolve_method(name, method_tree)
    train_tree = {**METHODS.get(name).train_defaults, **(tree.pop("train", None) or {})}
    if args.prompt_format:
        tree["prompt_format"] = args.prompt_format
    options = build(UnlearnOptions, {**tree, "train": train_tree})
    check_compatible(method, options)
    model_ref = resolve_model(args.model)
    model_path = model_ref.resolve() if isinstance(model_ref, Path) else None
    bench_dir = Path(args.benchmark).expanduser()
    bench_path = bench_dir.resolve() if bench_dir.is_dir() else None
    out = Path(args.out).expanduser().resolve()
    for inp in (model_path, bench_path):
        if inp is not None and (inp == out or out in inp.parents):
            raise OutputExistsError(f"input {inp} lies inside the output {out}: obliviate never writes over its inputs; choose another --out")
    check_output(out, overwrite=args.overwrite or args.resume, inputs=(model_path, bench_path))
    task, options.benchmark = load_task(args.benchmark, options.benchmark)
    return Plan(method, options, str(args.model), model_path, str(args.benchmark), task, out)


def check_compatible(method: Any, options: UnlearnOptions) -> None:
    """Reject option combinations that cannot work, before loading anything."""
    lora = options.lora
    if lora.enabled and lora.init == "fila" and not method.uses_retain:
        raise ConfigError(
            f"lora.init fila needs forget/retain pairs (a retain split), and method {method.name!r} uses no "
            "retain data; use a method with a retain term or --lora.init default"
        )
    if lora.enabled and lora.init == "fila" and lora.save == "adapter":
        raise ConfigError("lora.init fila rewrites the base weights, so --lora.save adapter cannot reproduce the model; use merged")


def load_task(spec: str, builder_options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A prepared benchmark folder, or a registered benchmark built with its options.

    Returns:
        ``(task, the builder options converted to their annotated types)``.
    """
    from obliviate.benchmarks import BENCHMARKS
    from obliviate.data.task import UnlearningTask
    from obliviate.prepare import check_benchmark_options, coerce_benchmark_options
    from obliviate.registry import suggest

    path = Path(spec).expanduser()
    if path.is_dir():
        if builder_options:
            raise ConfigError(f"--benchmark.* options apply to registered benchmarks; {path} is a prepared folder")
        return UnlearningTask.load(path), {}
    if spec in BENCHMARKS:
        builder = BENCHMARKS.get(spec)
        check_benchmark_options(builder, builder_options, spec)
        typed = coerce_benchmark_options(builder, builder_options)
        return builder(**typed), typed
    raise ConfigError(
        f"benchmark {spec!r} is neither a prepared benchmark folder nor a registered benchmark."
        f"{suggest(spec, BENCHMARKS.names())} Registered: {', '.join(BENCHMARKS.names())}; "
        "prepare a folder with `obliviate prepare --out DIR` and pass DIR/benchmark."
    )


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_resumable(plan: Plan, previous: dict[str, Any]) -> None:
    """On --resume, refuse options that differ from those the interrupted run recorded."""
    old = previous.get("config")
    config = plan.config()
    if old and old != config:
        changed = sorted(k for k in {*old, *config} if old.get(k) != config.get(k))
        raise ConfigError(
            f"--resume with options that differ from the interrupted run in {', '.join(changed)}; "
            "use the same options, or start over with --overwrite"
        )


def start_record(plan: Plan, resume: bool) -> None:
    """Write run.json's header (status "running"), keeping what an earlier run of the same model wrote."""
    from obliviate.results import update_run

    config = plan.config()

    def change(data: dict[str, Any]) -> dict[str, Any]:
        if not resume:
            data = {k: v for k, v in data.items() if k not in STALE_KEYS}
        return {
            **data,
            "kind": "unlearn",
            "status": "running",
            "config": config,
            "seed": plan.options.train.seed,
            "versions": package_versions(),
            "argv": sys.argv[1:],
            "started_at": _now(),
        }

    update_run(plan.out, change)


def finish_record(
    plan: Plan, lm: Any, formatter: Any, result: Any, timings: dict[str, float], processes: int = 1
) -> dict[str, Any]:
    """Merge the model and benchmark identity, timings and training log into run.json."""
    from obliviate.results import update_run

    task = plan.task
    train = result.train
    status = "diverged" if train.diverged else ("completed" if train.stopped in ("completed", "max_steps") else "stopped")
    record = {
        "status": status,
        "finished_at": _now(),
        "model": {"spec": plan.model_spec, "path": lm.path, "source": lm.source, "output": str(plan.out / "model")},
        "benchmark": {
            "spec": plan.benchmark_spec,
            "name": task.name,
            "version": task.version,
            "metadata": task.metadata,
            "sizes": {"forget": len(task.forget), "retain": len(task.retain), "holdout": len(task.holdout)},
        },
        "prompt_format": formatter.style,
        "processes": processes,
        "timings": timings,
        "train": {"steps": train.steps, "stopped": train.stopped, "bf16": train.bf16, "seconds": train.seconds, "log": train.log},
    }
    return update_run(plan.out, lambda data: {**data, **record})


def run(args: argparse.Namespace, extra: list[str], handoff: dict[str, Any] | None = None) -> int:
    """Run ``obliviate unlearn``; returns the exit code (0, or :data:`EXIT_DIVERGED`).

    ``handoff`` (for callers in the same process, such as the demo) receives the unlearned model as
    ``handoff["model"]`` (a LoadedModel), so it can be evaluated without reading it back from disk.
    """
    import torch
    from accelerate import PartialState

    from obliviate.models.io import load_model, save_model
    from obliviate.results import load_run
    from obliviate.unlearning import unlearn

    started = time.perf_counter()
    plan = build_plan(args, extra)
    previous = load_run(plan.out, missing_ok=True) if args.resume else {}
    check_resumable(plan, previous)
    if previous.get("status") in FINISHED and (plan.out / "model" / "config.json").is_file():
        print(f"{plan.out} already holds a finished run ({previous['status']}); nothing to resume")
        return 0
    state = PartialState(cpu=not torch.cuda.is_available())  # as the training loop's Accelerator
    state.wait_for_everyone()  # every process has validated before any of them writes
    main = state.is_main_process
    checkpoints = plan.out / "checkpoints"
    if main:
        plan.out.mkdir(parents=True, exist_ok=True)
        if not args.resume:
            shutil.rmtree(checkpoints, ignore_errors=True)
        start_record(plan, args.resume)
    state.wait_for_everyone()
    if args.resume and not (checkpoints / "last").is_dir() and main:
        print(f"no checkpoint in {checkpoints}: starting from the first step", file=sys.stderr)

    t0 = time.perf_counter()
    lm = load_model(plan.model_path or plan.model_spec)
    formatter = lm.formatter(plan.options.prompt_format)
    timings = {"load": time.perf_counter() - t0}
    t0 = time.perf_counter()
    result = unlearn(
        lm.model,
        lm.tokenizer,
        plan.task,
        plan.method,
        plan.options.train,
        formatter=formatter,
        lora=plan.options.lora,
        stop=plan.options.stop,
        checkpoint_dir=checkpoints,
        resume=args.resume,
        progress=main,
        final_checkpoint=False,  # the model is saved next; checkpoints exist only to resume mid-run
    )
    timings["unlearn"] = time.perf_counter() - t0
    if main:
        t0 = time.perf_counter()
        meta = {"prompt_format": formatter.style, "unlearned_with": plan.method.name}
        save_model(result.model, lm.tokenizer, plan.out / "model", overwrite=True, meta=meta)
        timings["save"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - started
        finish_record(plan, lm, formatter, result, timings, state.num_processes)
        if handoff is not None:
            from dataclasses import replace

            handoff["model"] = replace(lm, model=result.model, source=str(plan.out / "model"), path=str(plan.out / "model"),
                                       meta={**(lm.meta or {}), **meta})
        if not result.train.diverged:  # the saved model supersedes the checkpoint
            shutil.rmtree(checkpoints, ignore_errors=True)
        print_summary(plan, result)
    state.wait_for_everyone()
    return EXIT_DIVERGED if result.train.diverged else 0


def print_summary(plan: Plan, result: Any) -> None:
    """Say what training did and where the model went."""
    train = result.train
    log = train.log
    if log:
        first, last = log[0], log[-1]
        parts = [f"{k} {first[k]:.3f} -> {last[k]:.3f}" for k in ("forget_nll", "retain_nll") if k in first and k in last]
        print(f"{plan.method.name}: {train.steps} steps in {train.seconds:.1f} s; " + ", ".join(parts))
    if train.diverged:
        print(
            f"error: training diverged ({train.stopped}). The last good weights were saved to "
            f"{plan.out / 'model'}; lower --train.lr or keep --train.max_grad_norm on, and rerun with --overwrite.",
            file=sys.stderr,
        )
    elif train.stopped not in ("completed", "max_steps"):
        print(train.stopped)
    print(f"wrote {plan.out / 'model'} and {plan.out / 'run.json'}")
