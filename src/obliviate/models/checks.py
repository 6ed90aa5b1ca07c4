"""What a model folder must hold, checked before any weights load: a readable config that needs no
code of its own, safetensors weights (never pickles), a tokenizer, and a chat template where the
prompt format asks for one; and the "did you mean" of a mistyped folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from obliviate.errors import ModelError
from obliviate.types import Model


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
    from obliviate.models.io import MODEL_META, LoadedModel  # io loads through this module's checks

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


__all__ = [
    "check_model_config", "check_model_files", "check_prompt_format", "folder_has_chat_template",
]
