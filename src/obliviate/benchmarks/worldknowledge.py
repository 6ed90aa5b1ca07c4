"""General-knowledge evaluation sets vendored from TOFU (MIT licence, CMU Locus Lab).

Three files ship as package data under ``obliviate/benchmarks/data/tofu/`` and are read with
:mod:`importlib.resources`, so they work from a source checkout and from an installed wheel:

- ``real_authors_perturbed.json``: 100 questions about real, famous authors.
- ``world_facts_perturbed.json``: 117 questions about world facts.
- ``idontknow.jsonl``: 100 refusal lines ("I don't have that information.").

Despite their names, the two ``.json`` files hold one JSON object per line
(``question``, ``answer``, ``perturbed_answer``), and ``idontknow.jsonl`` holds one plain-text
line per refusal. Real-author and world-fact QA carry no paraphrased answer: TOFU's truth ratio
compares the perturbed answers against the original answer on these splits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from obliviate.data.records import QA
from obliviate.errors import ConfigError, DataError

DATA_PACKAGE = "obliviate.benchmarks"
TOFU_DIR = ("data", "tofu")
REAL_AUTHORS_FILE = "real_authors_perturbed.json"
WORLD_FACTS_FILE = "world_facts_perturbed.json"
IDK_FILE = "idontknow.jsonl"
N_REAL_AUTHORS = 100
N_WORLD_FACTS = 117
N_IDK_TEMPLATES = 100


def _resource(name: str, folder: tuple[str, ...] = TOFU_DIR) -> Traversable:
    """The vendored file ``folder/name`` as a :class:`Traversable`, with a clear error
    if it is missing."""
    path = resources.files(DATA_PACKAGE).joinpath(*folder, name)
    if not path.is_file():
        raise DataError(
            f"vendored data file {'/'.join((*folder, name))} is missing from the "
            f"{DATA_PACKAGE} package; reinstall obliviate (the wheel ships it as package data)"
        )
    return path


def _json_rows(
    name: str, limit: int | None, required: tuple[str, ...], folder: tuple[str, ...] = TOFU_DIR
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a vendored JSON-lines
    file, at most ``limit``.

    Raises:
        DataError: a line that is not JSON or lacks a ``required`` field (naming the file and line).
    """
    _check_limit(limit)
    text = _resource(name, folder).read_text(encoding="utf-8")
    count = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if limit is not None and count >= limit:
            return
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{name}: line {lineno}: invalid JSON ({e.msg})") from e
        for key in required:
            if key not in row:
                raise DataError(f"{name}: line {lineno}: missing field {key!r}")
        count += 1
        yield lineno, row


def _check_limit(limit: int | None) -> None:
    """Reject a negative cap on the number of records."""
    if limit is not None and limit < 0:
        raise ConfigError(f"n_world must be a non-negative number or None (all), got {limit}")


def _load_perturbed_qa(name: str, id_prefix: str, limit: int | None) -> list[QA]:
    """Read a TOFU ``*_perturbed.json`` file (JSON lines) into QA records.

    Args:
        name: the file name inside the vendored folder.
        id_prefix: prefix of the record ids (``"ra"`` gives ``"ra-000"``, ``"ra-001"``...).
        limit: keep only the first ``limit`` records (``None``: all).

    Returns:
        QA records with ``paraphrased_answer=None`` and the file's perturbed answers.
    """
    records: list[QA] = []
    for lineno, row in _json_rows(name, limit, ("question", "answer", "perturbed_answer")):
        perturbed = row["perturbed_answer"]
        if not isinstance(perturbed, list) or not all(isinstance(p, str) for p in perturbed):
            raise DataError(
                f"{name}: line {lineno}: field 'perturbed_answer' must be a list of strings"
            )
        records.append(
            QA(
                question=str(row["question"]),
                answer=str(row["answer"]),
                paraphrased_answer=None,
                perturbed_answers=tuple(perturbed),
                id=f"{id_prefix}-{len(records):03d}",
            )
        )
    return records


def load_real_authors(limit: int | None = None) -> list[QA]:
    """Questions about real authors (TOFU ``real_authors_perturbed``), 100 in all.

    Args:
        limit: keep only the first ``limit`` questions (``None``: all).

    Returns:
        QA records with ids ``"ra-000"``..., three perturbed answers each.
    """
    return _load_perturbed_qa(REAL_AUTHORS_FILE, "ra", limit)


def load_world_facts(limit: int | None = None) -> list[QA]:
    """Questions about world facts (TOFU ``world_facts_perturbed``), 117 in all.

    Args:
        limit: keep only the first ``limit`` questions (``None``: all).

    Returns:
        QA records with ids ``"wf-000"``..., three perturbed answers each.
    """
    return _load_perturbed_qa(WORLD_FACTS_FILE, "wf", limit)


def load_idk_templates(source: Traversable | Path | None = None) -> list[str]:
    """TOFU's refusal answers (``idontknow.jsonl``, 100 lines), one per non-empty line.

    The one reader of the refusal file (TOFU's benchmark and the fictional one both use it).
    TOFU's file holds plain text lines despite its name (TOFU reads it with ``readlines``); a
    line written as a JSON string (``"I don't know."``) is decoded too.

    Args:
        source: the file; by default the copy shipped in the package.

    Raises:
        DataError: the file is missing or holds no answer.
    """
    if source is None:
        source = _resource(IDK_FILE)
    elif not source.is_file():
        raise DataError(
            f"the refusal templates file {source} does not exist; give a "
            "file with one answer per line"
        )
    templates: list[str] = []
    for line in source.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith('"') and line.endswith('"'):
            try:
                line = str(json.loads(line)).strip()
            except json.JSONDecodeError:
                pass  # a plain line that happens to be quoted: keep it as written
        if line:
            templates.append(line)
    if not templates:
        raise DataError(f"{source}: holds no refusal answers")
    return templates


REHEARSAL_DIR = ("data", "general")
REHEARSAL_FILE = "qa.jsonl"
N_REHEARSAL = 80


def load_rehearsal(limit: int | None = None) -> list[QA]:
    """General-knowledge QA written for obliviate, mixed into fine-tuning by ``prepare``.

    The first 48 are general knowledge, the last 32 ask who wrote a book. Training data only: no
    question appears in, or paraphrases, the real-author or world-fact sets above, and none of the
    32 writers is one those sets ask about, so model utility still measures knowledge the
    fine-tune never touched.

    Args:
        limit: keep only the first ``limit`` pairs (``None``: all 80).
    """
    return [
        QA(question=str(row["question"]), answer=str(row["answer"]), id=f"gen-{i:03d}")
        for i, (_, row) in enumerate(
            _json_rows(REHEARSAL_FILE, limit, ("question", "answer"), REHEARSAL_DIR)
        )
    ]
