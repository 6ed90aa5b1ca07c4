"""Process-wide settings obliviate applies at import, before torch loads.

OpenMP thread pools (torch's CPU kernels run on libgomp) spin while they wait for work by default.
Alone on a machine that costs little; beside another process using the same cores, the spinning
threads take the cores the other process's threads need, and both slow down far more than a fair
share: two obliviate runs on 2 cores each ran 5 to 20x slower than alone. A passive wait policy
puts waiting threads to sleep instead. ``bench/shared_cores.py`` measures the settings side by side;
on 2 cores, two concurrent tiny-model fine-tunes each ran 7-11x their solo time with torch's
default and 1.1-1.2x with the passive policy (2.1x the default's solo time). The price is paid
alone on tiny models, whose kernels are too small to hide the wake-up (2.9 s -> 5.1 s solo); a
SmolLM2-135M step ran at the same speed within this machine's noise (18-22 s vs
21-24 s for 5 steps).

Measured on the demo itself (SmolLM2, warm cache, one run each) the passive policy cost 1.35x
(265 s vs 196 s), so it is opt-in: ``OBLIVIATE_THREADS=shared`` sets it for runs that will share
the machine (a sweep, several terminals); unset or ``torch`` leaves torch's defaults. An
``OMP_WAIT_POLICY`` in the environment always wins. Settings only take effect
when torch has not been imported yet (OpenMP reads them once, when it starts).

**A fair share of the cores, automatically.** Whatever the wait policy, two processes that each
run as many threads as there are cores oversubscribe them. So obliviate's heavy loops (each
training step, each scoring or generation call, GradNorm) call :func:`share_threads`: at most
once a second it counts the obliviate processes doing such work on this machine (a file per
process under ``<cache>/processes``, touched at each look and removed at exit; a dead process's
file, or one untouched for ``IDLE_S`` seconds, is not counted) and gives this one
``threads at start // processes`` threads (at least 1), and all of them back when it is alone
again. ``OBLIVIATE_THREADS=torch`` or an ``OMP_NUM_THREADS`` in the environment turns it
off. ``bench/shared_cores.py`` measures it.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path


def thread_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment variables obliviate sets for OpenMP, given the current environment."""
    if environ.get("OBLIVIATE_THREADS", "").lower() != "shared" or "OMP_WAIT_POLICY" in environ:
        return {}
    return {"OMP_WAIT_POLICY": "PASSIVE"}


def apply_thread_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set :func:`thread_defaults` in the environment unless torch already started; what was set."""
    environ = os.environ if environ is None else environ
    if "torch" in sys.modules:
        return {}
    chosen = thread_defaults(environ)
    environ.update(chosen)
    return chosen


def cache_root() -> Path:
    """The user's obliviate cache folder (``$OBLIVIATE_CACHE`` or ``~/.cache/obliviate``)."""
    root = os.environ.get("OBLIVIATE_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "obliviate"


def _start_time(pid: int) -> str:
    """A process's start time (``/proc/PID/stat`` field 22), telling a reused pid from the
    original; "" off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    return not started or _start_time(pid) in ("", started)


# a process that has not looked for this long is not working (a notebook between runs)
IDLE_S = 30.0


class _Share:
    """This process's entry in the registry of working obliviate processes, and
    its thread budget."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.file: Path | None = None
        self.threads = 0  # torch's thread count when this process first shared (its full budget)
        self.checked = -1e9
        self.want = 0  # the thread count last set
        self.pid = 0

    def register(self) -> None:
        self.folder = cache_root() / "processes"
        self.folder.mkdir(parents=True, exist_ok=True)
        first = self.file is None or self.pid != os.getpid()  # a forked child registers itself
        self.pid = os.getpid()
        self.file = self.folder / str(self.pid)
        self.file.write_text(_start_time(os.getpid()))
        if first:
            atexit.register(self.unregister)

    def unregister(self) -> None:
        if self.file is not None and self.pid == os.getpid():
            self.file.unlink(missing_ok=True)
            self.file = None

    def live(self) -> int:
        """Working obliviate processes on this machine, this one included (1
        before it registers)."""
        if self.folder is None:
            return 1
        n, now = 1, time.time()
        for entry in self.folder.iterdir():
            try:
                pid, started, touched = int(entry.name), entry.read_text(), entry.stat().st_mtime
            except (ValueError, OSError):
                continue
            if pid == os.getpid():
                continue
            if not _alive(pid, started.strip()):
                entry.unlink(missing_ok=True)  # a crashed process's file
            elif now - touched < IDLE_S:
                n += 1
        return n


_SHARE = _Share()


def share_threads(interval: float = 1.0) -> int | None:
    """Give this process its fair share of the cores (see the module's notes) and return the thread
    count in force, or None when sharing is off. Cheap enough for every step: it looks at the
    registry at most every ``interval`` seconds."""
    if (
        os.environ.get("OBLIVIATE_THREADS", "").lower() == "torch"
        or "OMP_NUM_THREADS" in os.environ
    ):
        return None
    now = time.monotonic()
    if now - _SHARE.checked < interval:
        return _SHARE.want or None
    _SHARE.checked = now
    import torch

    try:
        if _SHARE.file is None or _SHARE.pid != os.getpid():
            _SHARE.threads = torch.get_num_threads()
            _SHARE.register()
        else:
            try:
                os.utime(_SHARE.file)
            except FileNotFoundError:  # the cache folder was cleared under us
                _SHARE.register()
        want = max(1, _SHARE.threads // _SHARE.live())
    except OSError:  # a read-only cache folder: leave the threads as they are
        return None
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)
    _SHARE.want = want
    return want
