"""Process-wide settings obliviate applies at import, before torch loads.

OpenMP thread pools (torch's CPU kernels run on libgomp) spin while they wait for work by default.
Alone on a machine that costs little; beside another process using the same cores, the spinning
threads take the cores the other process's threads need, and both slow down far more than a fair
share: two obliviate runs on 2 cores each ran 5 to 20x slower than alone. A passive wait policy
puts waiting threads to sleep instead. ``bench/shared_cores.py`` measures the settings side by side;
on 2 cores, two concurrent tiny-model fine-tunes each ran 7-11x their solo time with torch's
default and 1.1-1.2x with the passive policy (2.1x the default's solo time). The price is paid
alone on tiny models, whose kernels are too small to hide the wake-up (2.9 s -> 5.1 s solo); a
SmolLM2-135M step ran at the same speed within this machine's noise (18-22 s vs 21-24 s for 5 steps).

Measured on the demo itself (SmolLM2, warm cache, one run each) the passive policy cost 1.35x
(265 s vs 196 s), so it is opt-in: ``OBLIVIATE_THREADS=shared`` sets it for runs that will share
the machine (a sweep, several terminals); unset or ``torch`` leaves torch's defaults. An
``OMP_WAIT_POLICY`` in the environment always wins. Settings only take effect
when torch has not been imported yet (OpenMP reads them once, when it starts).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping


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
