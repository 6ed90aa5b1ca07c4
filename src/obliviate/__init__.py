"""obliviate: make a language model forget, prove it is gone, and measure what it cost.

    import obliviate as ob
    run = ob.unlearn(ob.load_model("prep/target"), ob.load_benchmark("prep/benchmark"), "npo", out="runs/npo")

The public names are imported on first use (PEP 562), so ``obliviate --help`` and ``obliviate ls``
start without loading torch. ``ob.report``, ``ob.prepare`` and ``ob.demo`` are the API's functions
even after the same-named submodules are imported (reach those with ``from obliviate.reporting import
make_report`` or ``importlib.import_module("obliviate.reporting")``).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# transformers imports bitsandbytes (a dependency, for the quantize attack) whenever it loads a
# model, and bitsandbytes then warns on every CPU machine that an optional kernels package for its
# 4-bit CPU matmul is missing; its slower built-in path works. The warning says nothing about the
# user's run, so only that logger is quietened.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
# Likewise the kernels package (which bitsandbytes asks for that kernel) warns, offline, that it
# skips a check on the hub repository it would download it from.
logging.getLogger("kernels._internals.hf_hub").setLevel(logging.ERROR)

# OpenMP's wait policy for runs that share cores, set before torch loads when asked (obliviate.runtime).
from obliviate.runtime import apply_thread_defaults  # noqa: E402

apply_thread_defaults()

_PUBLIC: dict[str, str] = {
    "load_model": "obliviate.api",
    "load_benchmark": "obliviate.api",
    "load_run": "obliviate.api",
    "unlearn": "obliviate.api",
    "evaluate": "obliviate.api",
    "report": "obliviate.api",
    "prepare": "obliviate.api",
    "demo": "obliviate.api",
    "attack": "obliviate.api",
    "sequential": "obliviate.api",
    "scale": "obliviate.api",
    "ATTACKS": "obliviate.attacks",
    "Run": "obliviate.runs",
    "RunRecord": "obliviate.record",
    "Results": "obliviate.record",
    "UnlearningTask": "obliviate.data.task",
    "QA": "obliviate.data.records",
    "Text": "obliviate.data.records",
    "MCQ": "obliviate.data.records",
    "EvalOptions": "obliviate.metrics.base",
    "TrainConfig": "obliviate.training.loop",
    "LoraOptions": "obliviate.models.lora",
    "METHODS": "obliviate.methods.base",
    "METRICS": "obliviate.metrics",
    "BENCHMARKS": "obliviate.benchmarks",
    "MODELS": "obliviate.models.registry",
    "ObliviateError": "obliviate.errors",
    "ConfigError": "obliviate.errors",
    "DataError": "obliviate.errors",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:
    from obliviate.api import evaluate, load_benchmark, load_model, load_run, report, unlearn  # noqa: F401
    from obliviate.record import Results, RunRecord  # noqa: F401
    from obliviate.runs import Run  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'obliviate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
