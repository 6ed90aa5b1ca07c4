"""Benchmarks: each module declares one :class:`~obliviate.benchmarks.spec.BenchmarkSpec`.

Specs are registered lazily (``"module:SPEC"``) so that listing them imports nothing heavy:

- ``fictional``: built in, generated from a seed (fictitious people, TOFU-style QA), offline.
- ``tofu``: the TOFU benchmark (fictitious authors) read from local files or the hub.
- ``muse``: the MUSE benchmark (news and books) read from local files or the hub.

``BENCHMARKS.get(name)`` is the spec; calling it builds the task (``spec(**options)``), and
:func:`~obliviate.benchmarks.spec.benchmark_spec` returns it type-checked. The help lines below
are the specs' ``help`` (a test checks that they agree).

:func:`load_benchmark` resolves a prepared folder or a registered name to a task (eval, unlearn
and the Python API all use it); :func:`resolve_options` runs its checks without building.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from obliviate.benchmarks.load import load_benchmark, resolve_options
from obliviate.registry import Registry

if TYPE_CHECKING:
    from obliviate.benchmarks.spec import BenchmarkSpec

BENCHMARKS: Registry[BenchmarkSpec] = Registry("benchmark")

BENCHMARKS.add(
    "fictional",
    "obliviate.benchmarks.fictional:SPEC",
    help="Built-in generated fictitious people with TOFU-style QA, splits by person (offline).",
)
BENCHMARKS.add(
    "tofu",
    "obliviate.benchmarks.tofu:SPEC",
    help="TOFU: fictitious author profiles, forget01/05/10 with truth ratio and forget quality.",
)
BENCHMARKS.add(
    "muse",
    "obliviate.benchmarks.muse:SPEC",
    help="MUSE: news and books corpora, verbatim and knowledge memorization with privleak.",
)

__all__ = ["BENCHMARKS", "load_benchmark", "resolve_options"]
