"""Folders written atomically: built beside their final place, then swapped in by renames.

One helper for every folder obliviate writes whole (saved models, training checkpoints, the
converted embedded model). :func:`write_folder` fills a hidden temporary sibling
(``.NAME.tmp-PID-…``), moves an existing ``NAME`` aside (``.NAME.old-PID``), renames the new one
into place and deletes the old one. A reader therefore sees the old folder or the new one, never
half of one. What a killed process leaves behind is cleaned up by :func:`recover_folder`, which
every writer calls first: temporary folders of dead processes are deleted, and an old folder that
a kill stranded between the two renames is put back when ``NAME`` is missing. Folders get the
permissions of the user's umask (not the 0700 of a bare temporary directory).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _leftovers(final: Path, kind: str) -> list[tuple[Path, int]]:
    """Siblings ``.NAME.<kind>-PID...`` with the pid that wrote them."""
    prefix = f".{final.name}.{kind}-"
    found = []
    if final.parent.is_dir():
        for p in final.parent.iterdir():
            if p.name.startswith(prefix):
                pid = p.name[len(prefix):].split("-", 1)[0]
                if pid.isdigit():
                    found.append((p, int(pid)))
    return found


def recover_folder(final: Path) -> None:
    """Undo what a killed writer of ``final`` left: restore a stranded old folder,
    delete temporaries."""
    for old, pid in _leftovers(final, "old"):
        if _alive(pid):
            continue
        if not final.exists():
            os.replace(old, final)  # killed between the two renames: the old folder is the good one
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp, pid in _leftovers(final, "tmp"):
        if not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def write_folder(final: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Build a folder with ``fill(tmp)`` and swap it into ``final`` atomically; returns ``final``.

    Whatever ``final`` held is replaced (callers check for existing outputs first). If ``fill``
    raises, ``final`` is untouched and the temporary folder is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    try:
        os.chmod(tmp, _umask_mode())
        fill(tmp)
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader never sees half a file, and a crash leaves the previous version in place; the
    temporary files (``.NAME.PID.tmp``) that killed writers left beside ``path`` are removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for stale in path.parent.iterdir():
        pid = (
            stale.name[len(prefix) : -len(".tmp")]
            if stale.name.startswith(prefix) and stale.name.endswith(".tmp")
            else ""
        )
        if pid.isdigit() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)
    tmp = path.with_name(f"{prefix}{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["recover_folder", "write_atomic", "write_folder"]
