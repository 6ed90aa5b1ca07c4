"""Load models from a name, a local folder or a hub id; save them atomically as safetensors.

Loading never writes into the source folder, and saving never overwrites an existing output unless
asked: the model is written into a temporary sibling folder which is then renamed into place, so a
crash leaves either the old output or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.errors import ModelError, OutputExistsError
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


def check_model_config(folder: Path, *, trust_remote_code: bool = False) -> dict[str, Any]:
    """Read a model folder's config.json and refuse what cannot load, before any weights do.

    A config with ``auto_map`` names Python code shipped in the folder. When its ``model_type`` is
    one transformers knows (a saved Llama that also lists custom classes), transformers loads its
    own class and ignores that code, and so does obliviate. When the type is unknown, only the
    folder's code could build the model, and obliviate does not run code from a model folder
    unless ``trust_remote_code=True`` is passed to :func:`obliviate.load_model`.

    Returns:
        The parsed config.

    Raises:
        ModelError: config.json is not a JSON object, or the model needs the folder's own code.
    """
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelError(
            f"{path}: not a readable JSON config ({e}); copy or save the model again"
        ) from e
    if not isinstance(config, dict):
        raise ModelError(
            f"{path}: must hold a JSON object, got {type(config).__name__}; "
            "copy or save the model again"
        )
    auto_map = config.get("auto_map")
    if auto_map and not trust_remote_code and not _known_model_type(config.get("model_type")):
        classes = (
            ", ".join(f"{k}: {v}" for k, v in auto_map.items())
            if isinstance(auto_map, dict)
            else str(auto_map)
        )
        raise ModelError(
            f"{folder} holds a model of type {config.get('model_type')!r} that only its own "
            f"Python code can build (config.json auto_map: {classes}); obliviate does not run "
            "code from a model folder. Use a model of a type transformers ships (re-save it with "
            "a built-in class), or, having read that code, load it in Python with "
            "obliviate.load_model(path, trust_remote_code=True) and pass the loaded model to "
            "obliviate.unlearn / obliviate.evaluate"
        )
    return config


PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
"""Weight files that are Python pickles (``pytorch_model.bin``...): obliviate never loads them."""
NOT_WEIGHTS = ("training_args", "optimizer", "scheduler", "rng_state")
"""Pickles a trainer writes beside the weights, which are not weights."""

VOCABULARY_FILES = "tokenizer.json, tokenizer.model, vocab.json + merges.txt or vocab.txt"
"""What a tokenizer is read from (one of them), for messages."""


def _near_folder(path: Path) -> str | None:
    """An existing sibling folder whose name is close to ``path``'s, written as the user would
    (``prep/targett`` -> ``prep/target``), or None."""
    import difflib

    parent = path.parent
    if not path.name or path.name in (".", "..") or not parent.is_dir():
        return None
    try:
        names = [p.name for p in parent.iterdir() if p.is_dir()]
    except OSError:
        return None
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.75)
    return str(parent / close[0]) if close else None


def _listing(folder: Path, limit: int = 8) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return (", ".join(names[:limit]) + more) or "nothing"


def check_model_files(folder: Path, *, weights: bool = True) -> None:
    """Refuse a model folder that cannot load, from its file names alone: no safetensors weights
    (pickled ``pytorch_model.bin`` is refused on purpose), or no tokenizer.

    Raises:
        ModelError: naming what is missing and how to get it.
    """
    if weights and not any(folder.glob("*.safetensors")):
        pickles = sorted(
            {p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern)}
            - {p.name for p in folder.glob("*") if p.name.startswith(NOT_WEIGHTS)}
        )
        if pickles:
            raise ModelError(
                f"{folder} holds its weights only as pickled {', '.join(pickles)} and no "
                "*.safetensors file. obliviate refuses pickled weights on purpose: loading a "
                "pickle can run any code it holds. Convert the model once, in an environment "
                "you trust: in Python, m = AutoModelForCausalLM.from_pretrained(folder); "
                "m.save_pretrained(new_folder, safe_serialization=True), and save the "
                "tokenizer there too (AutoTokenizer.from_pretrained(folder)"
                ".save_pretrained(new_folder)); then pass new_folder"
            )
        raise ModelError(
            f"{folder} holds no model weights: no *.safetensors file (it holds "
            f"{_listing(folder)}). A model folder needs model.safetensors (or its shards) beside "
            "config.json: copy the whole folder again, or save the model with "
            "save_pretrained(folder, safe_serialization=True)"
        )
    names = {p.name for p in folder.iterdir() if p.is_file()}
    if "tokenizer.json" in names or any(
        n.startswith("vocab.") or n.endswith((".model", ".tiktoken")) for n in names
    ):
        return
    absent = [n for n in ("tokenizer.json", "tokenizer_config.json") if n not in names]
    raise ModelError(
        f"{folder} has no tokenizer: {' and '.join(absent)} "
        f"{'is' if len(absent) == 1 else 'are'} missing, and no other vocabulary file "
        f"({VOCABULARY_FILES}) is there (it holds {_listing(folder)}). A model folder needs "
        "its tokenizer saved beside the weights: tokenizer.save_pretrained(folder) in Python "
        "(obliviate's save_model and `obliviate prepare` do this), or copy the tokenizer files "
        "of the model it was trained from"
    )


def _known_model_type(model_type: object) -> bool:
    """Whether transformers has its own classes for ``model_type`` (its config table; no
    model is imported)."""
    if not isinstance(model_type, str):
        return False
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return model_type in CONFIG_MAPPING_NAMES


CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def folder_has_chat_template(folder: Path) -> bool:
    """Whether a model folder ships a chat template, read from its files without
    loading the tokenizer.

    Looked for: a non-empty ``chat_template`` in tokenizer_config.json, a ``chat_template.jinja`` or
    ``chat_template.json`` file, or an ``additional_chat_templates/`` folder (what
    transformers reads).
    """
    if any((folder / name).is_file() for name in CHAT_TEMPLATE_FILES):
        return True
    extra = folder / "additional_chat_templates"
    if extra.is_dir() and any(extra.iterdir()):
        return True
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    # absent or unreadable: the tokenizer load will say so
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and bool(config.get("chat_template"))


def check_prompt_format(model: Model, style: str, flag: str = "--prompt-format") -> None:
    """Refuse the chat prompt format for a model that has no chat template, before it loads.

    ``model`` is what :func:`resolve_model` returned (a folder is checked through its files) or a
    :class:`LoadedModel` (its tokenizer is checked); a registered name or hub id is left to the
    check made when the tokenizer loads. ``"auto"`` counts as chat when obliviate recorded that the
    model was fine-tuned with chat prompts.

    Raises:
        ConfigError: the format is (or resolves to) chat and the model has no chat template.
    """
    from obliviate.errors import ConfigError

    if isinstance(model, LoadedModel):
        wanted = model.meta.get("prompt_format", style) if style == "auto" else style
        has_template = bool(getattr(model.tokenizer, "chat_template", None))
        where = f"the tokenizer of {model.source}"
    elif isinstance(model, Path) and model.is_dir():
        wanted = style
        if style == "auto":
            try:
                wanted = json.loads((model / MODEL_META).read_text(encoding="utf-8")).get(
                    "prompt_format", "auto"
                )
            except (OSError, ValueError, AttributeError, RecursionError):
                wanted = "auto"
        has_template = folder_has_chat_template(model)
        where = (
            f"{model} (no chat_template in tokenizer_config.json, no "
            f"{' or '.join(CHAT_TEMPLATE_FILES)})"
        )
    else:
        return
    if wanted == "chat" and not has_template:
        recorded = (
            " (obliviate.json records that this model was fine-tuned with chat prompts)"
            if style == "auto"
            else ""
        )
        raise ConfigError(
            f"prompt format 'chat' needs a chat template, and {where} has "
            f"none{recorded}; use {flag} plain (Question: ... Answer:), or add a chat "
            "template to the model's tokenizer"
        )


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


def folder_fingerprint(folder: Path) -> str:
    """The identity of a model folder: each file's name, size and modification time, and the headers
    of its safetensors files (tensor names, shapes, dtypes, offsets); the weights are not read."""
    h = hashlib.sha256()
    h.update(b"folder")
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
        if f.suffix == ".safetensors":
            with f.open("rb") as fh:
                size = int.from_bytes(fh.read(8), "little")
                h.update(fh.read(min(size, 1 << 26)))
    return "folder:" + h.hexdigest()


def model_fingerprint(model: Model) -> str:
    """The identity of a model's weights, cheap enough to check on every resume.

    ``model`` is a :class:`LoadedModel` or anything holding one's ``model`` (and maybe ``path``).
    A model read from a folder is identified by each file's name, size and modification time and
    by the headers of its safetensors files (tensor names, shapes, dtypes, offsets), without
    reading the weights; a model that lives only in memory, by a hash of its weights.
    """
    path = getattr(model, "path", None)
    folder = Path(path) if path else None
    if folder is not None and folder.is_dir():
        return folder_fingerprint(folder)
    import torch

    h = hashlib.sha256()
    h.update(b"memory")
    for name, tensor in sorted(model.model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return "memory:" + h.hexdigest()


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
