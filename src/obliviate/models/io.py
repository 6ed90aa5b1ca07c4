"""Load models from a name, a local folder or a hub id; save them atomically as safetensors.

Loading never writes into the source folder, and saving never overwrites an existing output unless
asked: the model is written into a temporary sibling folder which is then renamed into place, so a
crash leaves either the old output or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.errors import ModelError, OutputExistsError
from obliviate.models.checks import _near_folder, check_model_config, check_model_files
from obliviate.models.registry import MODELS
from obliviate.types import Model, Tokenizer

if TYPE_CHECKING:
    import torch

    from obliviate.data.formatting import PromptFormatter

# written beside the weights: how the model was trained (prompt format)
MODEL_META = "obliviate.json"


@dataclass
class LoadedModel:
    """A model, its tokenizer, where it came from, and what obliviate recorded when saving it."""

    model: Model
    tokenizer: Tokenizer
    source: str
    path: str | None
    meta: dict[str, Any] = field(default_factory=dict)

    def formatter(self, style: str = "auto") -> PromptFormatter:
        """The prompt format to use with this model.

        ``"auto"`` means: the format the model was fine-tuned with when obliviate saved it, else
        its chat template when it has one, else plain.
        """
        from obliviate.data.formatting import PromptFormatter

        if style == "auto":
            style = self.meta.get("prompt_format", "auto")
        return PromptFormatter(self.tokenizer, style)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def resolve_model(
    spec: str | os.PathLike, *, trust_remote_code: bool = False, weights: bool = True
) -> str | Path:
    """Turn a model spec into a local folder, a hub id, or a registry name kept as is.

    Order: an existing local folder; a registered name (``smollm2-135m``, ``tiny``); a hub id
    (``org/name``). A spec that is none of these fails here, before anything heavy runs, and so
    do a path that is a typo of an existing folder ("did you mean"), a folder whose config.json is
    unreadable or needs the folder's own code (see :func:`check_model_config`), and a folder
    without safetensors weights (unless ``weights`` is False) or without a tokenizer (see
    :func:`check_model_files`).
    """
    spec_str = str(spec)
    path = Path(spec_str).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{path} is a folder but holds no config.json: pass a Hugging Face model folder "
                f"(for example the target/ folder written by `obliviate prepare`)"
            )
        check_model_config(path, trust_remote_code=trust_remote_code)
        check_model_files(path, weights=weights)
        return path
    if spec_str in MODELS:
        return spec_str
    near = _near_folder(path) if "/" in spec_str or os.sep in spec_str else None
    if near is not None:
        raise ModelError(
            f"model folder {spec_str} does not exist; did you mean {near}? (a spec that is no "
            "existing folder is read as a registered model's name or a hub id org/name)"
        )
    looks_like_path = (
        spec_str.startswith((".", "/", "~")) or os.sep in spec_str.rstrip("/").split("/", 1)[-1]
    )
    if looks_like_path or spec_str.count("/") != 1:
        raise ModelError(
            f"model {spec_str!r} is neither an existing folder, nor a registered model "
            f"({', '.join(MODELS.names())}), nor a hub id of the form org/name"
        )
    if _offline():
        raise ModelError(
            f"model {spec_str!r} looks like a hub id, but HF_HUB_OFFLINE is set: download it "
            f"first (or unset HF_HUB_OFFLINE), or pass a local folder"
        )
    return spec_str


def load_tokenizer(spec: str | os.PathLike, *, trust_remote_code: bool = False) -> Tokenizer:
    """Load only the tokenizer of a model spec."""
    return load_model(spec, trust_remote_code=trust_remote_code, tokenizer_only=True).tokenizer


def load_model(
    spec: str | os.PathLike,
    *,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
    tokenizer_only: bool = False,
    device: torch.device | str | None = None,
    device_map: str | None = None,
    max_memory: dict[int | str, str] | None = None,
    offload_folder: str | os.PathLike | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer.

    Args:
        spec: a registered name, a local folder, or a hub id.
        dtype: torch dtype of the weights (default float32: training runs under autocast).
        trust_remote_code: allow a model folder's own Python code (off unless asked).
        tokenizer_only: skip the weights.
        device: where to put the weights (default: the CPU; :func:`default_device` is this
            process's accelerator).
        device_map: spread the layers over the GPUs, the CPU and ``offload_folder`` (``auto``,
            ``balanced``, ``sequential``: accelerate's big-model loading), for a model larger
            than one device; ``device`` is then unused. An in-memory model (``tiny``) ignores it.
        max_memory: the most each device may hold under ``device_map`` (``{0:
            "20GiB", "cpu": "60GiB"}``).
        offload_folder: where ``device_map`` puts the weights no device has room for.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    dtype = dtype or torch.float32
    resolved = resolve_model(
        spec, trust_remote_code=trust_remote_code, weights=not tokenizer_only
    )
    if isinstance(resolved, str) and resolved in MODELS:
        entry = MODELS.get(resolved)()
        if isinstance(entry, tuple):  # an in-memory model (tiny)
            model, tokenizer = entry
            return LoadedModel(
                model.to(device or "cpu", dtype), tokenizer, MODELS.canonical(resolved), None
            )
        resolved = Path(entry)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, trust_remote_code=trust_remote_code)
        model = None
        if not tokenizer_only:
            model = AutoModelForCausalLM.from_pretrained(
                resolved,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                use_safetensors=isinstance(resolved, Path) or None,
                **(
                    {
                        "device_map": device_map,
                        "max_memory": max_memory,
                        "offload_folder": offload_folder,
                    }
                    if device_map
                    else {}
                ),
            )
    # transformers and safetensors raise OSError, ValueError, SafetensorError...
    except Exception as e:
        if isinstance(e, ModelError):
            raise
        hint = ""
        if "trust_remote_code" in str(e) or "auto_map" in str(e):
            hint = (
                " The folder asks to run its own Python code; obliviate does not unless told to "
                "(trust_remote_code=True)."
            )
        elif "safetensors" in type(e).__module__.lower() or "deserializ" in str(e):
            hint = (
                " A weights file is damaged or truncated (an interrupted copy?): "
                "copy or save the model again."
            )
        raise ModelError(f"could not load model {spec!s}: {e}.{hint}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None and device is not None and not device_map:
        model.to(device)
    meta: dict[str, Any] = {}
    if isinstance(resolved, Path) and (resolved / MODEL_META).is_file():
        meta = json.loads((resolved / MODEL_META).read_text(encoding="utf-8"))
    return LoadedModel(
        model, tokenizer, str(spec), str(resolved) if isinstance(resolved, Path) else None, meta
    )


def default_device() -> str:
    """This process's accelerator: ``cuda:LOCAL_RANK`` where CUDA is available (one GPU per
    launched process), else ``mps`` on Apple silicon, else ``cpu``."""
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0') or 0) % torch.cuda.device_count()}"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def placement(model: Model) -> dict[str, int]:
    """Where a model's modules are: ``{device: modules}`` from a ``device_map`` (``"disk"`` for
    offloaded ones), else ``{device of its parameters: 1}``."""
    device_map = getattr(model, "hf_device_map", None)
    if device_map:
        counts: dict[str, int] = {}
        for where in device_map.values():
            key = f"cuda:{where}" if isinstance(where, int) else str(where)
            counts[key] = counts.get(key, 0) + 1
        return counts
    param = next(iter(model.parameters()), None)
    return {str(param.device) if param is not None else "none": 1}


def offloaded(model: Model) -> bool:
    """Whether a ``device_map`` left some weights off every device (offloaded to
    the CPU or disk)."""
    return any(p.device.type == "meta" for p in model.parameters())


def save_model(
    model: Model,
    tokenizer: Tokenizer,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    extra: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Save a model and tokenizer as safetensors into ``out``, atomically.

    Args:
        model: a transformers model (a peft model is saved as its adapter; merge first
            to save full weights).
        tokenizer: its tokenizer.
        out: the output folder; it must not exist unless ``overwrite``.
        overwrite: replace an existing ``out``.
        extra: more files to write into the folder (name -> text), e.g. a model card.
        meta: what to remember about the model (its prompt format), saved as obliviate.json.
    """
    from obliviate.files import write_folder

    out = Path(out).expanduser()
    if out.exists() and not overwrite and any(out.iterdir()):
        raise OutputExistsError(
            f"{out} already exists; pass overwrite=True (--overwrite) to replace it"
        )

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if meta:
            (tmp / MODEL_META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")

    return write_folder(out, fill)
