"""``prepare``: materialize a benchmark, fine-tune the target and the retain-only oracle.

- ``DIR/benchmark/``: the UnlearningTask (reloaded exactly by every later command);
- ``DIR/target/``: the model fine-tuned on forget + retain (it knows the facts to forget);
- ``DIR/retain/``: the model fine-tuned on retain alone (the oracle unlearning should imitate);
- ``DIR/prepare.json``: settings, timings and how well each model knows each split.

Each model is trained from the same base with the same recipe. Finished parts are skipped when the
command is run again with ``--resume``, and an interrupted fine-tune continues from its checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from obliviate.config import to_dict
from obliviate.errors import ConfigError, ObliviateError, OutputExistsError
from obliviate.files import write_atomic
from obliviate.record import Recorder
from obliviate.record.store import read_run
from obliviate.runs.checks import check_same_identity
from obliviate.training.loop import TrainConfig

PREPARE_FILE = "prepare.json"
OWNED = ("benchmark", "target", "retain", ".checkpoints", ".target-log.json", ".retain-log.json")
"""What a preparation writes into its folder besides prepare.json (cleared by ``--overwrite``)."""
"""The preparation's record (the run-record schema, kind "prepare"): options, status, what each model knows."""


@dataclass
class PrepareConfig:
    """Settings of ``obliviate prepare`` (dotted on the command line: --train.lr, --benchmark.n_people)."""

    train: TrainConfig = field(default_factory=TrainConfig)  # fine-tuning recipe of both models
    benchmark: dict[str, Any] = field(default_factory=dict)  # options of the benchmark's builder
    prompt_format: Literal["auto", "chat", "plain"] = "plain"  # plain (Question:/Answer:, ~40% fewer tokens than SmolLM2's chat template), chat or auto
    summary_new_tokens: int = 32  # generation length for the ROUGE-L summary (answers are short)
    summary_items: int = 50  # items of each split the summary reads, spread evenly over it (0: all)
    rehearsal: int = 0  # general-knowledge QA pairs (of 80 shipped) mixed into both fine-tunes, so model utility survives
    freeze_embeddings: bool = False  # keep the (tied) embedding and output matrix fixed: 9% faster steps on SmolLM2
    freeze_layers: int = 0  # keep the lowest N decoder blocks fixed in both fine-tunes (no backward through them, their forward run once per example): SmolLM2 15 of 30
    group_by_length: bool = True  # batch examples of similar length (less padding, same examples per epoch)


def benchmark_defaults(benchmark: str, model: str) -> dict[str, Any]:
    """The benchmark's builder options suited to a model (from its spec; none for most)."""
    from obliviate.benchmarks.spec import benchmark_spec

    return benchmark_spec(benchmark).defaults_for(model)


def prepare_config(
    model: str,
    benchmark: str = "fictional",
    options: Mapping[str, Any] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> PrepareConfig:
    """The PrepareConfig of a model and benchmark: model defaults < YAML file < ``options``.

    Args:
        model: a registered model name (its defaults apply), a local folder or a hub id.
        benchmark: a registered benchmark (its sizes for ``model`` apply).
        options: a nested tree of PrepareConfig fields, e.g. ``{"train": {"lr": 1e-3},
            "benchmark": {"n_people": 12}}`` (values may be command-line strings).
        config_file: a YAML file of the same tree.

    Raises:
        ConfigError: an unknown field or a value of the wrong type (validated before any load).
    """
    from obliviate.config import build, load_yaml, merge
    from obliviate.models.defaults import prepare_defaults, train_defaults

    tree: dict[str, Any] = {
        **prepare_defaults(model), "train": train_defaults(model), "benchmark": benchmark_defaults(benchmark, model),
    }
    if config_file:
        tree = merge(tree, load_yaml(config_file))
    if options:
        tree = merge(tree, dict(options))
    return build(PrepareConfig, tree)


def know_summary(model: Any, tokenizer: Any, formatter: Any, records: list, max_new_tokens: int) -> dict[str, float]:
    """How well a model knows QA records: mean answer NLL per token and ROUGE-L recall."""
    import numpy as np

    from obliviate.metrics.functional import rouge_l
    from obliviate.scoring import ModelScorer

    scorer = ModelScorer(model, tokenizer, formatter, batch_size=32)
    scores = scorer.score([scorer.qa_request(r.question, r.answer) for r in records])
    gens = scorer.generate([formatter.prompt(r.question) for r in records], max_new_tokens=max_new_tokens)
    rouge = [rouge_l(g, r.answer, mode="recall", stemmer=True) for g, r in zip(gens, records)]
    return {"nll": float(np.mean([-s.mean_logprob for s in scores])), "rouge_l_recall": float(np.mean(rouge)), "items": len(records)}


def spread(records: list, n: int) -> list:
    """At most ``n`` of ``records``, evenly spaced from the first (all of them when ``n`` is 0)."""
    if n <= 0 or len(records) <= n:
        return list(records)
    return [records[i * len(records) // n] for i in range(n)]


def check_freeze_layers(n: int, blocks: int | None) -> None:
    """Refuse a ``freeze_layers`` that is negative or leaves none of ``blocks`` decoder blocks trained."""
    if n < 0 or (blocks is not None and n >= blocks):
        bound = f"between 0 and {blocks - 1} (the model has {blocks} decoder blocks)" if blocks else "0 (train every block) or more"
        raise ConfigError(f"freeze_layers must be {bound}, got {n}")


def freeze(model: Any, config: PrepareConfig) -> None:
    """Keep fixed what the recipe says: the (tied) embedding and output matrix, the lowest blocks."""
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
        model.get_output_embeddings().weight.requires_grad_(False)
    if config.freeze_layers:
        from obliviate.models.structure import decoder_blocks

        blocks = decoder_blocks(model)
        check_freeze_layers(config.freeze_layers, len(blocks))
        for block in blocks[: config.freeze_layers]:
            block.requires_grad_(False)


def fine_tune(
    loaded: Any, records: list, formatter: Any, config: PrepareConfig, prefix: Any = None, **train_args: Any
) -> tuple[Any, Any, int]:
    """Fine-tune ``loaded.model`` in place on QA ``records`` with the recipe's freezing.

    Where the embedding and the lowest ``freeze_layers`` blocks stay fixed, their outputs are
    computed once (:class:`~obliviate.training.prefix.FrozenPrefix`; pass the one returned by
    the previous call to reuse its states for a second model from the same base) and each step
    runs the upper blocks alone. ``train_args`` go to the training loop. Returns the TrainResult,
    the FrozenPrefix (or None) and how many blocks ran once per example (0: every step ran them).
    """
    from obliviate.data.formatting import make_collate, sft_items
    from obliviate.methods.base import sft_loss
    from obliviate.models.io import default_device
    from obliviate.models.precision import resolve_bf16
    from obliviate.training.loop import train
    from obliviate.training.prefix import FrozenPrefix, frozen_prefix_blocks

    items = sft_items(records, formatter, config.train.max_length)
    lengths = [len(it["forget"].input_ids) for it in items] if config.group_by_length else None
    pad = loaded.tokenizer.pad_token_id
    freeze(loaded.model, config)
    collate, skipping, once = make_collate(pad), contextlib.nullcontext(), 0
    n = frozen_prefix_blocks(loaded.model, config.freeze_layers)
    if n:
        if prefix is None or prefix.n != n:
            prefix = FrozenPrefix(n, bf16=resolve_bf16(config.train.bf16, default_device()), max_length=config.train.max_length)
        loaded.model.to(default_device())  # where the loop trains it, so the states match its numerics
        with_states = prefix.attach(loaded.model, items, pad)
        if with_states is not None:
            items, collate, skipping, once = with_states, prefix.collate(collate), prefix.skipping(loaded.model), n
    with skipping:
        result = train(loaded.model, sft_loss, items, collate, config.train, lengths=lengths, **train_args)
    return result, prefix, once


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str))


def prepare(
    benchmark: str,
    model: str,
    out: str | os.PathLike[str],
    config: PrepareConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    say: Any = print,
) -> dict[str, Any]:
    """Build the benchmark and the two fine-tuned models under ``out``; return the summary."""
    from obliviate.benchmarks.spec import benchmark_spec
    from obliviate.benchmarks.worldknowledge import N_REHEARSAL
    from obliviate.models.checks import check_model_config, check_prompt_format
    from obliviate.models.io import resolve_model
    from obliviate.runs.checks import check_output, clear_owned, decide_output
    from obliviate.runs.unlearn import package_versions

    if not 0 <= config.rehearsal <= N_REHEARSAL:
        raise ConfigError(f"rehearsal must be between 0 and {N_REHEARSAL} (the general QA pairs shipped), got {config.rehearsal}")
    check_freeze_layers(config.freeze_layers, None)
    if config.summary_items < 0:
        raise ConfigError(f"summary_items must be 0 (every item) or more, got {config.summary_items}")
    out = Path(out)
    spec = benchmark_spec(benchmark)
    spec.check_options(config.benchmark)
    bench_options = spec.coerce_options(config.benchmark)
    source = resolve_model(model)
    check_prompt_format(source, config.prompt_format, "--prompt_format")
    if config.freeze_layers and isinstance(source, Path) and (source / "config.json").is_file():
        blocks = check_model_config(source).get("num_hidden_layers")
        check_freeze_layers(config.freeze_layers, blocks if isinstance(blocks, int) else None)
    out = check_output(out, (source.resolve() if isinstance(source, Path) else None,))
    claim = decide_output(out, resume=resume, overwrite=overwrite, record=PREPARE_FILE)
    record = {"kind": "prepare", "benchmark_spec": benchmark, "model": model, "config": to_dict(config)}
    if claim == "resume":
        check_prepare_resumable(out, record)
    task, build_s = None, 0.0
    resume = claim == "resume"
    if not (resume and (out / "benchmark" / "task.json").is_file()):
        t0 = time.perf_counter()
        task = spec(**bench_options)  # bad benchmark data fails here, before --out is written or a model loads
        build_s = time.perf_counter() - t0
    from filelock import FileLock, Timeout

    lock = FileLock(str(out.with_name(f".{out.name}.prepare.lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputExistsError(f"another `obliviate prepare` is writing into {out}; wait for it or choose another --out") from None
    try:
        if claim == "overwrite":
            clear_owned(out, OWNED, record=PREPARE_FILE)  # the old contents go first: a half-done folder never looks complete
        out.mkdir(parents=True, exist_ok=True)
        recorder = Recorder(out, PREPARE_FILE)
        recorder.replace({**record, "status": "running", "versions": package_versions()})
        with recorder.failing():
            return _prepare(task, model, out, config, record, resume=resume, progress=progress, say=say, build_s=build_s)
    finally:
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)


def prepare_complete(out: str | Path) -> bool:
    """Whether ``out`` holds a finished preparation (a killed one says "running")."""
    try:
        data = read_run(Path(out) / PREPARE_FILE)
    except ObliviateError:
        return False
    return bool(data) and data.get("status", "completed") == "completed" and "models" in data


def check_prepare_resumable(out: Path, record: dict[str, Any]) -> None:
    """On --resume, refuse options other than those the interrupted preparation recorded."""
    previous = read_run(out / PREPARE_FILE, missing_ok=True)
    if not previous:
        raise ConfigError(
            f"{out} holds no {PREPARE_FILE}, so what it was prepared with is unknown; start over with --overwrite"
        )
    old = {k: previous.get(k) for k in ("benchmark_spec", "model", "config")}
    new = {k: record.get(k) for k in ("benchmark_spec", "model", "config")}
    if previous.get("benchmark_spec") is None:  # written before the record named them
        old["benchmark_spec"], old["model"] = new["benchmark_spec"], previous.get("model")
    check_same_identity(old, new, what="the interrupted preparation", nested=("config",))


def _prepare(
    task: Any, model: str, out: Path, config: PrepareConfig, record: dict[str, Any],
    *, resume: bool, progress: bool, say: Any, build_s: float = 0.0,
) -> dict[str, Any]:
    """Save ``task`` (None: reuse the one saved in ``out``), then fine-tune and summarise both models.

    ``build_s`` is how long building ``task`` took (recorded with its saving as timings["benchmark"]).
    """
    from obliviate.benchmarks.worldknowledge import load_rehearsal
    from obliviate.data.formatting import PromptFormatter
    from obliviate.data.task import UnlearningTask
    from obliviate.models.io import load_model, save_model
    from obliviate.runs.unlearn import package_versions

    started = time.perf_counter()
    timings: dict[str, float] = {}

    bench_dir = out / "benchmark"
    if task is None:
        task = UnlearningTask.load(bench_dir)
    else:
        t0 = time.perf_counter()
        task.save(bench_dir)
        timings["benchmark"] = build_s + time.perf_counter() - t0
    say(f"benchmark {task.name}: {len(task.forget)} forget, {len(task.retain)} retain, {len(task.holdout)} holdout items")

    summary: dict[str, Any] = {
        **record,
        "benchmark": {"name": task.name, "fingerprint": task.fingerprint(), **task.metadata},
        "models": {},
    }
    rehearsal = load_rehearsal(config.rehearsal) if config.rehearsal else []
    prefix = None  # the fixed blocks' outputs, computed for the first model and reused for the second
    for role, records in (("target", task.forget + task.retain + rehearsal), ("retain", task.retain + rehearsal)):
        folder = out / role
        t0 = time.perf_counter()
        loaded = load_model(model)
        formatter = PromptFormatter(loaded.tokenizer, config.prompt_format)
        if resume and (folder / "config.json").is_file():
            say(f"{role}: already trained, reusing {folder}")
            loaded = load_model(folder)
        else:
            say(f"{role}: fine-tuning {model} on {len(records)} items")
            result, prefix, once = fine_tune(
                loaded, records, formatter, config, prefix,
                checkpoint_dir=out / ".checkpoints" / role, resume=resume, progress=progress, description=f"fine-tuning {role}",
            )
            if result.diverged:
                raise ConfigError(f"fine-tuning the {role} model diverged ({result.stopped}); lower --train.lr")
            summary.setdefault("training", {})[role] = {
                "steps": result.steps, "bf16": result.bf16, "attention": result.attention, "blocks_run_once": once,
                "seconds": round(result.seconds, 3),
            }
            save_model(loaded.model, loaded.tokenizer, folder, overwrite=True, meta={"prompt_format": formatter.style})
            write_json(out / f".{role}-log.json", result.log)
        timings[role] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary["models"][role] = {
            split: know_summary(loaded.model, loaded.tokenizer, formatter, spread(task.split(split), config.summary_items),
                                config.summary_new_tokens)
            for split in ("forget", "retain")
        }
        timings[f"{role}_summary"] = time.perf_counter() - t0
        del loaded
    timings["total"] = time.perf_counter() - started
    summary["timings"] = timings
    summary["prompt_format"] = config.prompt_format
    summary["status"] = "completed"
    summary["versions"] = package_versions()
    Recorder(out, PREPARE_FILE).replace(summary)
    import shutil

    shutil.rmtree(out / ".checkpoints", ignore_errors=True)
    return summary
