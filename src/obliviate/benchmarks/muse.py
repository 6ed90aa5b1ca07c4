"""MUSE: Machine Unlearning Six-Way Evaluation (Shi et al., 2024, arXiv:2407.06460).

Two corpora: ``news`` (BBC articles) and ``books`` (Harry Potter). The target model was trained
on the raw forget and retain text; unlearning must remove verbatim and knowledge memorization of
the forget text without a privacy leak and while keeping the retain knowledge.

Layout read: a folder laid out as ``swj0419/muse_bench``'s ``data/<corpus>/`` (``path`` may be
that corpus folder or the ``data/`` folder above it). Each file may be ``.json`` (a list),
``.jsonl``, ``.parquet``, ``.txt`` (raw text only) or Hugging Face shards
(``raw/forget-*.parquet``, as in a download of ``muse-bench/MUSE-News``). When ``path`` is not
a local path it is read from the hub (online only): configuration = sub-folder, split = file::

    raw/forget            forget text                          -> task.forget          (required)
    raw/retain1           retain text used while unlearning    -> task.retain          (required)
    privleak/holdout      never-trained text, MIA non-members  -> task.holdout
    privleak/forget       forget excerpts for PrivLeak         -> splits["privleak_forget"]
    privleak/retain       retain excerpts (or retain2)         -> splits["privleak_retain"]
    verbmem/forget        {"prompt", "gt"} pairs               -> splits["verbmem_forget"]
    knowmem/forget_qa     {"question", "answer"} pairs         -> splits["knowmem_forget"]
    knowmem/retain_qa     (or retain2_qa)                      -> splits["knowmem_retain"]
    knowmem/forget_qa_icl few-shot examples for knowmem_forget -> splits["knowmem_forget_icl"]
    knowmem/retain_qa_icl few-shot examples for knowmem_retain -> splits["knowmem_retain_icl"]
    scal/forget_1 .. 4    nested forget sets, ~1x .. 4x (News) -> splits["scal_forget_1"] ..
    sust/forget_1 .. 4    four disjoint request sets (News)    -> splits["sust_forget_1"] ..

The ``scal`` and ``sust`` splits feed the scalability and sustainability protocols
(:func:`obliviate.scale`, :func:`obliviate.sequential` with ``sizes=["scal_forget_1", ...]`` or
``requests=["sust_forget_1", ...]``); the evaluation plan never reads them. They are read from a
local folder whenever present (silently absent otherwise: only MUSE-News has them) and from the
hub only with ``protocol_splits=True``, since they are about 30 MB more to download.

Assumptions, documented because the released files differ by source:

- ``privleak/*.json`` is a list of strings in the GitHub data and ``{"text": ...}`` rows on the
  hub; both are read as Text.
- ``raw/*.txt`` holds articles without a reliable separator (MUSE's own trainer concatenates the
  file and cuts it into 2048-token chunks), so ``txt_mode`` chooses: ``"paragraph"`` (default:
  one Text per block between blank lines), ``"line"``, or ``"whole"`` (one Text; cut it into
  chunks downstream). Hub shards have one article per row and need no cutting.
- muse_bench's Books data has no knowmem files; the optional splits that are absent are listed under
  ``metadata["missing_splits"]``.
- MUSE defines no refusal templates, so ``task.templates`` is empty.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from obliviate.benchmarks.spec import MIA_ATTACKS, BenchmarkSpec
from obliviate.data.readers import (
    Kind,
    TxtMode,
    find_split_files,
    near_misses,
    read_files,
    read_hf_dataset,
)
from obliviate.data.records import Record, Text
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError, DataError
from obliviate.registry import suggest

log = logging.getLogger(__name__)

VERSION = "1"
CORPORA = ("news", "books")
# AUC of forget vs holdout (Min-40%) for the model retrained without the forget set; PrivLeak is
# measured against it (muse_bench constants.AUC_RETRAIN[corpus]["forget_holdout_Min-40%"]).
AUC_RETRAIN = {"news": 0.4772, "books": 0.5393}

# target -> (sub-folder, file names tried in order, record kind, required)
LAYOUT: dict[str, tuple[str, tuple[str, ...], Kind, bool]] = {
    "forget": ("raw", ("forget",), "text", True),
    "retain": ("raw", ("retain1",), "text", True),
    "holdout": ("privleak", ("holdout",), "text", False),
    "privleak_forget": ("privleak", ("forget",), "text", False),
    "privleak_retain": ("privleak", ("retain", "retain2"), "text", False),
    "verbmem_forget": ("verbmem", ("forget",), "text", False),
    "knowmem_forget": ("knowmem", ("forget_qa",), "qa", False),
    "knowmem_retain": ("knowmem", ("retain_qa", "retain2_qa"), "qa", False),
    "knowmem_forget_icl": ("knowmem", ("forget_qa_icl",), "qa", False),
    "knowmem_retain_icl": ("knowmem", ("retain_qa_icl", "retain2_qa_icl"), "qa", False),
}
# the protocols' forget sets (MUSE section 5; muse_bench load_data.py): target -> (sub-folder, file)
PROTOCOL_LAYOUT: dict[str, tuple[str, str]] = {
    f"{config}_forget_{k}": (config, f"forget_{k}")
    for config in ("scal", "sust")
    for k in range(1, 5)
}


def corpus_folder(path: str | Path, corpus: str) -> Path:
    """The folder that holds ``raw/``, ``verbmem/``... for ``corpus`` under ``path``."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; build_muse needs a folder of MUSE data")
    nested = root / corpus
    return nested if (nested / "raw").is_dir() or (nested / "verbmem").is_dir() else root


def build_muse(
    path: str,
    corpus: str = "news",
    *,
    txt_mode: TxtMode = "paragraph",
    protocol_splits: bool = False,
) -> UnlearningTask:
    """Build the MUSE task for one corpus.

    Args:
        path: the corpus folder, a folder with ``news/`` and ``books/`` inside, or (online only)
            a hub name such as ``"muse-bench/MUSE-News"``.
        corpus: ``"news"`` or ``"books"``.
        txt_mode: how ``raw/*.txt`` files are cut into Texts (see the module docstring).
        protocol_splits: also download the ``scal`` and ``sust`` forget sets from the hub (a local
            folder's are always read when present).

    Returns:
        A task named ``"muse@1/<corpus>"``: Text records for forget, retain, holdout, privleak and
        verbmem splits (verbmem with ``prompt``/``continuation``), QA records for knowmem.

    Raises:
        ConfigError: ``corpus`` is not a MUSE corpus.
        DataError: the folder or a required file is missing, or a file is malformed.
    """
    if corpus not in CORPORA:
        raise ConfigError(
            f"unknown MUSE corpus {corpus!r}; choose one of {', '.join(CORPORA)}."
            + suggest(corpus, list(CORPORA))
        )
    from_hub = not Path(path).exists()
    source = path if from_hub else str(corpus_folder(path, corpus))
    loaded: dict[str, list[Record]] = {}
    missing: list[str] = []
    for target, (sub, names, kind, required) in LAYOUT.items():
        if from_hub:
            records = _from_hub(path, sub, names, kind, corpus, required)
        else:
            records = _from_folder(
                Path(source) / sub, names, kind, corpus, txt_mode, target, required
            )
        if records is None:
            missing.append(target)
            log.warning("MUSE data %s has no %s/%s; no %s split", source, sub, names[0], target)
        else:
            loaded[target] = records
    for target, (sub, name) in PROTOCOL_LAYOUT.items():
        if from_hub:
            records = (
                _from_hub(path, sub, (name,), "text", corpus, False) if protocol_splits else None
            )
        else:
            records = _from_folder(
                Path(source) / sub, (name,), "text", corpus, txt_mode, target, False
            )
        if records is not None:
            loaded[target] = records
    return UnlearningTask(
        name=f"muse@{VERSION}/{corpus}",
        forget=loaded.pop("forget"),
        retain=loaded.pop("retain"),
        holdout=loaded.pop("holdout", []),
        splits=loaded,
        templates=[],
        roles={role: list(splits) for role, splits in ROLES.items()},
        metadata={
            "benchmark": "muse",
            "version": VERSION,
            "corpus": corpus,
            "source": source,
            "txt_mode": txt_mode,
            "privleak_auc_retrain": AUC_RETRAIN[corpus],
            "missing_splits": missing,
        },
    )


def _from_folder(
    folder: Path,
    names: tuple[str, ...],
    kind: Kind,
    corpus: str,
    txt_mode: TxtMode,
    target: str,
    required: bool,
) -> list[Record] | None:
    """One split from a local sub-folder (``raw/``...), or None when it is absent and optional."""
    for name in names:
        files = find_split_files(folder, name)
        if files:
            prefix = f"muse-{corpus}-{folder.name}-{name}"
            records = read_files(files, kind, id_prefix=prefix, txt_mode=txt_mode)
            if target == "verbmem_forget":
                _check_verbmem(records, files)
            return records
    if required:
        wanted = " or ".join(f"{n}.txt/.json/.jsonl/.parquet" for n in names)
        found = [m for n in names for m in near_misses(folder, n)]
        instead = f". Found instead: {'; '.join(found)}" if found else ""
        raise DataError(f"{folder}: no {wanted}; MUSE needs it for task.{target}{instead}")
    return None


def _from_hub(
    name: str, config: str, splits: tuple[str, ...], kind: Kind, corpus: str, required: bool
) -> list[Record] | None:
    """One split of the hub dataset (configuration = sub-folder, split = file name)."""
    try:
        records = read_hf_dataset(name, splits[0], kind, config=config)
    except DataError:
        if required:
            raise
        return None
    prefix = f"muse-{corpus}-{config}-{splits[0]}"
    return [replace(r, id=f"{prefix}-{i}") for i, r in enumerate(records)]


def _check_verbmem(records: list[Record], files: list[Path]) -> None:
    """Every verbmem item must carry a prompt and its ground-truth continuation."""
    for i, record in enumerate(records):
        if not isinstance(record, Text) or record.prompt is None:
            where = files[0] if len(files) == 1 else files[0].parent
            raise DataError(
                f"{where}: item {i}: field 'prompt': missing; verbmem items need 'prompt' and 'gt'"
            )


ROLES: dict[str, tuple[str, ...]] = {"privleak": ("privleak_forget", "forget")}

SPEC = BenchmarkSpec(
    name="muse",
    version=VERSION,
    help="MUSE: news and books corpora, verbatim and knowledge memorization with privleak.",
    builder=build_muse,
    roles=ROLES,
    data_hint=(
        "MUSE's data is not shipped with obliviate: download it first, e.g. `hf download "
        "muse-bench/MUSE-News --repo-type dataset --local-dir muse-news` (MUSE-Books for "
        "--benchmark.corpus books), then pass --benchmark.path muse-news; a hub name as the path "
        "works only online (not with HF_HUB_OFFLINE=1)."
    ),
    plan=(
        "verbmem_forget/verbmem", "knowmem_forget/knowmem", "knowmem_retain/knowmem",
        *(f"privleak_forget/{a}" for a in MIA_ATTACKS[:4]), "privleak",
    ),
)
