"""TOFU: a Task of Fictitious Unlearning for LLMs (Maini et al., 2024, arXiv:2401.06121).

200 fictitious authors with 20 question-answer pairs each. The model is fine-tuned on all of
them, then asked to forget the last 1%, 5% or 10% of the authors while keeping the rest.

Layout read (the configurations of ``locuslab/TOFU``, one file each, named ``<config>.json``,
``.jsonl`` or ``.parquet``, or a ``<config>/`` folder of shards)::

    forget10_perturbed      forget set, with paraphrased and perturbed answers  -> task.forget
                            (``forget10`` when absent: no truth-ratio fields)
    retain90                everything but the forget authors                   -> task.retain
    holdout10               never-trained authors (MIA non-members)             -> task.holdout
    retain_perturbed        400 retain items with perturbed answers -> splits["retain_perturbed"]
    real_authors_perturbed  real authors (utility)                  -> splits["real_authors"]
    world_facts_perturbed   world facts (utility)                   -> splits["world_facts"]

``forget01``/``forget05``/``forget10`` pair with ``retain99``/``retain95``/``retain90`` and
``holdout01``/``holdout05``/``holdout10``. TOFU's files name the wrong answers
``perturbed_answer`` (a list); they become :attr:`QA.perturbed_answers`.

A local folder needs the forget and retain files; the evaluation files are read when present
and listed under ``metadata["missing_splits"]`` when not. From the hub (online only) every file
but the holdout is required.

The template answers are TOFU's 100 "I don't know" lines (``data/idontknow.jsonl`` of
``locuslab/tofu``, MIT licence), shipped as package data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from obliviate.benchmarks.spec import MIA_ATTACKS, BenchmarkSpec, tofu_set
from obliviate.benchmarks.worldknowledge import load_idk_templates
from obliviate.data.readers import (
    find_split_files,
    near_misses,
    parse_field_map,
    read_files,
    read_hf_dataset,
)
from obliviate.data.records import Record
from obliviate.data.rows import MissingFieldError
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError, DataError
from obliviate.registry import suggest

log = logging.getLogger(__name__)

VERSION = "1"
HUB_NAME = "locuslab/TOFU"
FORGET_SPLITS = {"forget01": "01", "forget05": "05", "forget10": "10"}
EVAL_SPLITS = {  # split name in the task -> TOFU configuration
    "retain_perturbed": "retain_perturbed",
    "real_authors": "real_authors_perturbed",
    "world_facts": "world_facts_perturbed",
}
def retain_split_for(forget: str) -> str:
    """The retain configuration that completes ``forget``: forget10 -> retain90."""
    return f"retain{100 - int(FORGET_SPLITS[forget])}"


def build_tofu(
    path: str = HUB_NAME,
    forget: str = "forget10",
    field_map: str | Mapping[str, str] | None = None,
) -> UnlearningTask:
    """Build the TOFU task for one forget split.

    Args:
        path: a local folder holding the TOFU files, or the hub name (online only).
        forget: ``"forget01"``, ``"forget05"`` or ``"forget10"``.
        field_map: the files' names for the QA fields where they differ, as a dict
            (``{"question": "prompt", "answer": "completion"}``) or, from the command line,
            ``--benchmark.field_map question=prompt,answer=completion``.

    Returns:
        A task named ``"tofu@1/<forget>"`` with QA records everywhere.

    Raises:
        ConfigError: ``forget`` is not a TOFU forget split.
        DataError: a required file is missing or malformed (the message names it).
    """
    if forget not in FORGET_SPLITS:
        raise ConfigError(
            f"unknown TOFU forget split {forget!r}; choose one of {', '.join(FORGET_SPLITS)}."
            + suggest(forget, list(FORGET_SPLITS))
        )
    fields = parse_field_map(field_map, "qa", "benchmark.field_map")
    pct = FORGET_SPLITS[forget]
    retain_name, holdout_name = retain_split_for(forget), f"holdout{pct}"
    folder = Path(path)
    from_hub = not folder.is_dir()
    if folder.is_file():
        raise DataError(
            f"{path} is a {folder.suffix or 'plain'} file; TOFU reads a folder that holds its "
            f"files ({forget}_perturbed.json, {retain_name}.json...; .jsonl and .parquet too): "
            "pass that folder as --benchmark.path (path=... in Python)"
        )
    missing: list[str] = []

    def load(config: str, required: bool, fallback: str | None = None) -> list[Record]:
        try:
            return read(config, required, fallback)
        except MissingFieldError as e:
            raise DataError(f"{e}{_cli_field_map(e, fields)}") from e

    def read(config: str, required: bool, fallback: str | None = None) -> list[Record]:
        if from_hub:
            try:
                records = read_hf_dataset(path, "train", "qa", config=config, field_map=fields)
                return _renumber(records, config)
            except MissingFieldError:
                raise
            except DataError:
                if required:
                    raise
                missing.append(config)
                log.warning("TOFU %s not found on %s; task has no %s split", config, path, config)
                return []
        for name in (config, fallback) if fallback else (config,):
            files = find_split_files(folder, name)
            if files:
                return read_files(files, "qa", fields, id_prefix=f"tofu-{name}")
        if required:
            names = [n for n in (config, fallback) if n]
            wanted = " or ".join(f"{n}.json/.jsonl/.parquet" for n in names)
            found = [m for n in names for m in near_misses(folder, n)]
            instead = f". Found instead: {'; '.join(found)}" if found else ""
            raise DataError(f"{folder}: no {wanted}; TOFU {forget} needs it{instead}")
        missing.append(config)
        log.warning("TOFU folder %s has no %s; the task has no such split", folder, config)
        return []

    forget_records = load(f"{forget}_perturbed", True, fallback=None if from_hub else forget)
    retain = load(retain_name, True)
    holdout = load(holdout_name, False)
    splits = {key: load(config, from_hub) for key, config in EVAL_SPLITS.items()}
    return UnlearningTask(
        name=f"tofu@{VERSION}/{forget}",
        forget=forget_records,
        retain=retain,
        holdout=holdout,
        splits={k: v for k, v in splits.items() if v},
        templates=load_idk_templates(),
        roles={role: list(splits) for role, splits in ROLES.items()},
        metadata={
            "benchmark": "tofu",
            "version": VERSION,
            "source": str(path),
            "forget_split": forget,
            "retain_split": retain_name,
            "holdout_split": holdout_name,
            "missing_splits": missing,
        },
    )


def _cli_field_map(error: MissingFieldError, fields: Mapping[str, str]) -> str:
    """How to name the record's fields from the command line, for a record that lacks one."""
    needed = {**fields}
    for name in ("question", "answer"):
        if name not in error.present and name not in needed:
            needed[name] = "your_field"
    needed.setdefault(error.field, "your_field")
    pairs = ",".join(f"{k}={v}" for k, v in needed.items())
    return f"; on the command line: --benchmark.field_map {pairs}"


def _renumber(records: list[Record], config: str) -> list[Record]:
    """Give hub records the same ids a local folder would give them."""
    return [
        r if r.id != f"{config}-{i}" else replace(r, id=f"tofu-{config}-{i}")
        for i, r in enumerate(records)
    ]


ROLES: dict[str, tuple[str, ...]] = {
    "options": ("real_authors", "world_facts"),
    "utility_retain": ("retain_perturbed",),  # the retain set itself has no perturbed answers
    "privleak": ("forget",),
}

SPEC = BenchmarkSpec(
    name="tofu",
    version=VERSION,
    help="TOFU: fictitious author profiles, forget01/05/10 with truth ratio and forget quality.",
    builder=build_tofu,
    roles=ROLES,
    # TOFU evaluates retention on retain_perturbed (the retain set itself has no perturbed answers).
    plan=(*tofu_set("retain_perturbed"), *(f"forget/{a}" for a in MIA_ATTACKS), "privleak"),
    # TOFU and open-unlearning generate up to 200 new tokens (shorter caps cut
    # long answers' recall).
    eval_defaults={"max_new_tokens": 200},
)
