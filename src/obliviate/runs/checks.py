"""The checks every run kind shares, each in one place.

- :func:`is_loaded`: whether an argument is a loaded model (an ``isinstance`` check on
  :class:`~obliviate.models.io.LoadedModel`, never attribute guessing).
- :func:`model_folder` / :func:`benchmark_folder`: the folder an input lives in, if any.
- :func:`check_output`: the output is a folder path that neither is nor lies inside an input,
  and holds no input either.
- :func:`decide_output` and :func:`clear_owned`: the one resume / overwrite policy. An empty or
  missing folder is new; ``resume`` continues a folder that holds the run kind's record;
  ``overwrite`` replaces only what obliviate wrote there (the record, the kind's own outputs, its
  lock and temporary files) and never a folder that holds no record of ours; anything else is
  refused.
- :func:`identity_digest`: the short content digest of a run's identity (what a resume compares).
- :func:`check_same_identity`: refuse a resume whose identity differs, naming what differs.

Every run kind calls these before it loads a model, so a bad ``--out`` fails in a second, and
what the user keeps beside obliviate's files is never deleted.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from obliviate.errors import ConfigError, OutputExistsError
from obliviate.record import RunRecord
from obliviate.record.identity import check_same_identity, differing, identity_digest

Claim = Literal["new", "resume", "overwrite"]
"""What :func:`decide_output` decided: a fresh folder, a run to continue, a run to replace."""

COMMON_OWNED = ("run.json", ".run.json.lock")
"""What obliviate writes into every run folder, besides a run kind's own outputs."""


def is_loaded(obj: object) -> bool:
    """Whether ``obj`` is a loaded model (:class:`~obliviate.models.io.LoadedModel`)."""
    from obliviate.models.io import LoadedModel

    return isinstance(obj, LoadedModel)


def require_model(obj: object, what: str = "model") -> None:
    """Refuse anything that is neither a model spec (str, path) nor a loaded model."""
    if isinstance(obj, str | os.PathLike) or is_loaded(obj):
        return
    raise ConfigError(
        f"{what} is a model folder, a registered model's name, a hub id, or a model loaded with "
        f"ob.load_model(...), not {type(obj).__name__}"
    )


def model_folder(model: object) -> Path | None:
    """The folder a model spec or a loaded model lives in (None for a registered name or hub id)."""
    if is_loaded(model):
        path = getattr(model, "path", None)
        return Path(path).expanduser().resolve() if path else None
    from obliviate.models.io import resolve_model

    if not isinstance(model, str | os.PathLike):
        return None
    ref = resolve_model(model)  # a missing model fails here with a clear message
    return ref.resolve() if isinstance(ref, Path) else None


def benchmark_folder(benchmark: object) -> Path | None:
    """The folder a prepared benchmark (or a task read from one) lives in, if any."""
    from obliviate.data.task import UnlearningTask

    spec = (
        (getattr(benchmark, "source", "") or "")
        if isinstance(benchmark, UnlearningTask)
        else benchmark
    )
    if not isinstance(spec, str | os.PathLike) or not str(spec):
        return None
    folder = Path(spec).expanduser()
    return folder.resolve() if folder.is_dir() else None


def check_output(
    out: str | os.PathLike,
    inputs: Iterable[Path | None] = (),
    *,
    flag: str = "--out",
    adds_only: bool = False,
) -> Path:
    """The output folder, resolved; refused when it is a file, an input, inside one, or holds one.

    obliviate never writes into its inputs and never clears a folder that holds one. A run kind
    that only adds its record to the folder (``adds_only``: an evaluation into ``RUN`` beside
    ``RUN/model``) may have inputs inside it.
    """
    target = Path(out).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise OutputExistsError(
            f"{flag} {target} is an existing file, not a folder; choose a folder path for {flag}"
        )
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp).expanduser().resolve()
        if target == inp or inp in target.parents:
            raise OutputExistsError(
                f"{flag} {target} is the input folder {inp} (or inside it): obliviate never writes into its "
                f"inputs; choose another {flag}, e.g. a run folder beside the model"
            )
        if target in inp.parents and not adds_only:
            raise OutputExistsError(
                f"input {inp} lies inside the output {target}: obliviate never writes over its inputs; "
                f"choose another {flag}"
            )
    return target


def decide_output(
    out: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    record: str = "run.json",
    replaceable: bool = False,
) -> Claim:
    """The one resume / overwrite decision of every run kind, taken before any model loads.

    Nothing is changed here: a run kind clears what it owns with :func:`clear_owned` when it
    starts executing an ``"overwrite"`` decision.

    Args:
        out: the output folder (from :func:`check_output`).
        resume: continue what ``out`` holds (it must hold ``record``; an empty folder starts anew).
        overwrite: replace it; allowed only for a folder that holds ``record`` (a folder of the
            user's is never cleared).
        record: the run kind's record file (run.json, protocol.json, prepare.json).
        replaceable: ``out`` holds only a stub of ours that may be replaced without ``overwrite``
            (a run that failed before it saved anything).

    Returns:
        ``"new"``, ``"resume"`` or ``"overwrite"``.
    """
    if not out.is_dir() or not any(out.iterdir()):
        return "new"
    ours = (out / record).is_file()
    if resume:
        if not ours:
            raise OutputExistsError(
                f"{out} holds no {record}: there is no run of this kind to resume there; choose an empty --out"
            )
        return "resume"
    if not (overwrite or replaceable):
        raise OutputExistsError(
            f"{out} already exists; pass --overwrite to replace it (or --resume to continue it), or choose another --out"
        )
    if not ours:
        raise OutputExistsError(
            f"{out} holds no {record}: it is not a folder obliviate wrote, and obliviate will not clear it; "
            "choose another --out (or empty the folder yourself)"
        )
    return "overwrite"


def clear_owned(out: Path, owned: Iterable[str] = (), *, record: str = "run.json") -> None:
    """Remove what a run kind wrote into ``out`` (its ``record``, run.json and its lock, the ``owned``
    names, leftovers of killed writers of any of them); keep everything else.

    Each folder is renamed aside before it is deleted, so a kill half-way never leaves a half-old
    folder under its own name.
    """
    if not out.is_dir():
        return
    wanted = {record, *COMMON_OWNED, *owned}
    for entry in list(out.iterdir()):
        name = entry.name
        leftover = name.startswith(".") and any(name.startswith(f".{w}.") for w in wanted)
        if name not in wanted and not leftover:
            continue
        if entry.is_dir() and not entry.is_symlink():
            aside = entry.with_name(f".{name}.old-{os.getpid()}") if not leftover else entry
            if aside != entry:
                shutil.rmtree(aside, ignore_errors=True)
                os.replace(entry, aside)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def evaluated_fingerprint(record: RunRecord) -> str | None:
    """The fingerprint of the model whose scores a run stores (None when it recorded none)."""
    found = record.eval_identity.get("model")
    return found if isinstance(found, str) and found else None


def check_evaluated(record: RunRecord, folder: Path, what: str, flag: str) -> None:
    """Refuse to attack a model folder other than the one whose scores ``record`` stores.

    The attacked scores are compared with the stored ones item by item, so they must come from the
    same weights: a model found elsewhere (another --model, or whatever now sits at the recorded
    path) would mix two models into one verdict.
    """
    from obliviate.models.fingerprint import folder_fingerprint

    stored = evaluated_fingerprint(record)
    if stored is None or not stored.startswith("folder:"):
        return  # scored in memory: checked against the weights once they load (run_attack)
    if folder_fingerprint(folder) != stored:
        raise ConfigError(
            f"{folder} is not the model {what} was evaluated on (its files differ in name, size, modification time "
            f"or tensors): the attack would compare another model's scores with the stored ones. Pass {flag} with "
            "the evaluated model's folder, or evaluate this model into the run first (obliviate eval --model "
            f"{folder} --benchmark B --out RUN --overwrite)"
        )


def check_loaded_weights(lm: Any, record: RunRecord | None, role: str) -> None:
    """A run scored in memory recorded a hash of its weights: the loaded model must have the same."""
    from obliviate.models.fingerprint import model_fingerprint

    stored = evaluated_fingerprint(record or RunRecord({}))
    if stored is None or not stored.startswith("memory:"):
        return
    if model_fingerprint(dataclasses.replace(lm, path=None)) != stored:
        raise ConfigError(
            f"the {role} model {lm.source} does not hold the weights its run was evaluated with; pass the "
            "evaluated model's folder, or evaluate this model into the run first"
        )


__all__ = [
    "COMMON_OWNED",
    "check_evaluated",
    "check_loaded_weights",
    "evaluated_fingerprint",
    "Claim",
    "benchmark_folder",
    "check_output",
    "check_same_identity",
    "decide_output",
    "clear_owned",
    "differing",
    "identity_digest",
    "is_loaded",
    "model_folder",
    "require_model",
]
