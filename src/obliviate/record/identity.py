"""Identities: what makes a stored result reusable, and the one digest of an identity."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError

if TYPE_CHECKING:
    from obliviate.data.task import UnlearningTask


def identity_digest(identity: Mapping[str, Any]) -> str:
    """A short content digest of a run's identity (16 hex digits of SHA-256 over canonical JSON)."""
    blob = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def differing(
    old: Mapping[str, Any], new: Mapping[str, Any], nested: Iterable[str] = ()
) -> list[str]:
    """The keys whose values differ (``config.lr`` style for the ``nested`` mappings)."""
    keys = sorted({*old, *new})
    out: list[str] = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if k in nested and isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(f"{k}.{sub}" for sub in differing(a, b))
        else:
            out.append(k)
    return out


def check_same_identity(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    *,
    what: str = "the interrupted run",
    nested: Iterable[str] = (),
) -> None:
    """Refuse to resume when the stored identity differs from this run's, naming the differences."""
    if not old:
        return
    changed = differing(old, new, nested)
    if changed:
        raise ConfigError(
            f"--resume with options that differ from {what} in {', '.join(changed)}; "
            "use the same options, or start over with --overwrite"
        )


def evaluation_identity(
    source: Any, task: UnlearningTask, options: Any, *, with_model: bool = True
) -> dict[str, Any]:
    """What makes stored metrics reusable: the model's weights, the benchmark's content, the options.

    ``with_model=False`` leaves the model out (None): nothing can resume an evaluation kept in memory.
    """
    from dataclasses import asdict

    from obliviate.data.task import CORE_SPLITS
    from obliviate.models.fingerprint import model_fingerprint
    from obliviate.scoring import CachedScorer, ModelScorer, Scorer

    inner = source.inner if isinstance(source, CachedScorer) else source
    if not with_model:
        model = None
    elif not isinstance(inner, Scorer) or type(inner) is ModelScorer:
        model = model_fingerprint(inner)  # a loaded model, or the plain scorer of one: its weights
    else:  # an inference-time method's scorer: its kind, and the weights it wraps when it has them
        weights = (
            model_fingerprint(inner) if hasattr(inner, "model") else getattr(inner, "source", "")
        )
        model = f"scorer:{type(inner).__name__}:{weights}"
    return {
        "model": model,
        "benchmark": task.fingerprint(),
        "core": task.fingerprint(CORE_SPLITS),
        "options": asdict(options),
    }


def check_same_evaluation(
    out: Any, stored: Mapping[str, Any] | None, identity: Mapping[str, Any]
) -> None:
    """Refuse to resume into ``out`` when its metrics belong to another model, benchmark or options."""
    if not isinstance(stored, Mapping):
        raise ConfigError(
            f"{out} already holds metrics, computed by an evaluation that did not record which model, "
            "benchmark and options they belong to; pass --overwrite (overwrite=True) to recompute them, "
            "or choose another --out"
        )
    what = {
        "model": "another model",
        "benchmark": "another benchmark",
        "options": "other evaluation options",
    }
    changed = set(
        differing(
            {k: v for k, v in stored.items() if k in what},
            {k: v for k, v in identity.items() if k in what},
        )
    )
    if not changed:
        return
    differs = [text for key, text in what.items() if key in changed]
    raise ConfigError(
        f"{out} holds metrics of {' and '.join(differs)}; they cannot be resumed for this one. Pass "
        "--overwrite (overwrite=True) to recompute them here, or choose another --out"
    )
