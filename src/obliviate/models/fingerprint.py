"""The identity of a model's weights, cheap enough to check on every resume and before an attack."""

from __future__ import annotations

import hashlib
from pathlib import Path

from obliviate.types import Model


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


__all__ = ["folder_fingerprint", "model_fingerprint"]
