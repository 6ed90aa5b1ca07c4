"""What a benchmark declares: its builder, its splits' roles, its metric plan, per-model sizes.

Every benchmark module defines one :class:`BenchmarkSpec` (``SPEC``) and registers it in
:data:`obliviate.benchmarks.BENCHMARKS` as ``"module:SPEC"``; adding a benchmark is adding one
module and one registry line. The builder takes keyword options with annotations (command-line
strings are converted to them) and returns an :class:`~obliviate.data.task.UnlearningTask` whose
``roles`` are the spec's.

Split roles (:data:`obliviate.data.task.ROLES`) tell metrics which splits play which part, so no
metric names a split: ``options`` (TOFU Prob normalised over the answer options, truth ratio
against the original answer), ``utility_retain`` (model utility's retain split) and ``privleak``
(the member split of PrivLeak's Min-K% AUC).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError
from obliviate.registry import suggest

if TYPE_CHECKING:
    from obliviate.data.task import UnlearningTask

TOFU_METRICS = ("prob", "rouge", "truth_ratio")
MIA_ATTACKS = ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_pp", "mia_reference", "mia_gradnorm")


def tofu_set(retain: str) -> list[str]:
    """TOFU's metric keys: Prob, ROUGE-L, truth ratio on four splits, then the derived metrics."""
    keys = [
        f"{s}/{m}" for s in ("forget", retain, "real_authors", "world_facts") for m in TOFU_METRICS
    ]
    return keys + [
        "forget/extraction_strength", "forget/exact_memorization", "forget/fluency",
        "forget_quality", "model_utility",
    ]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: how to build it and how to evaluate it.

    Attributes:
        name: the registered name (``task.metadata["benchmark"]`` of the tasks it builds).
        version: the benchmark version (``task.metadata["version"]``).
        help: one line for ``obliviate ls benchmarks``.
        builder: a function of keyword options (annotated) returning an UnlearningTask.
        roles: role -> split names (see :data:`obliviate.data.task.ROLES`), set on every task built.
        plan: the metric keys an evaluation runs; entries whose data a task lacks are skipped.
        model_defaults: registered model name -> builder options that suit that model (sizes a
            model can learn within the time budget).
        eval_defaults: evaluation options of the benchmark's official protocol (e.g. TOFU's
            200-token generations), under the caller's own.
        data_hint: how to get the data a required builder option (MUSE's ``path``) points at,
            said when that option is missing.
    """

    name: str
    version: str
    help: str
    builder: Callable[..., UnlearningTask]
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    plan: tuple[str, ...] = ()
    model_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    eval_defaults: Mapping[str, Any] = field(default_factory=dict)
    data_hint: str = ""

    def options(self) -> list[str]:
        """The builder's option names."""
        return list(inspect.signature(self.builder).parameters)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Fail early if the builder has no such option, or needs one that ``options`` lacks."""
        params = self.options()
        for key in options:
            if key not in params:
                raise ConfigError(
                    f"benchmark {self.name!r} has no option {key!r}.{suggest(key, params)} "
                    f"Its options: {', '.join(params)}."
                )
        empty = inspect.Parameter.empty
        required = [
            p.name
            for p in inspect.signature(self.builder).parameters.values()
            if p.default is empty
        ]
        missing = [name for name in required if name not in options]
        if missing:
            hint = f" {self.data_hint}" if self.data_hint else ""
            raise ConfigError(
                f"benchmark {self.name!r} needs --benchmark.{missing[0]} (in Python: "
                f"load_benchmark({self.name!r}, {missing[0]}=...)).{hint}"
            )

    def coerce_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Convert command-line strings to the builder's annotated parameter types."""
        from obliviate.config import _coerce

        hints = inspect.get_annotations(self.builder, eval_str=True)
        return {
            k: _coerce(v, hints[k], f"benchmark.{k}") if k in hints else v
            for k, v in options.items()
        }

    def defaults_for(self, model: str) -> dict[str, Any]:
        """Builder options suited to a model (a registered name or alias; none for other models)."""
        if not self.model_defaults:
            return {}
        from obliviate.models.registry import MODELS

        key = MODELS.canonical(model) if model in MODELS else ""
        return dict(self.model_defaults.get(key, {}))

    def build(self, **options: Any) -> UnlearningTask:
        """Check and convert ``options``, then build the task."""
        self.check_options(options)
        return self.builder(**self.coerce_options(options))

    def __call__(self, **options: Any) -> UnlearningTask:
        """Build the task with already typed options (``BENCHMARKS.get(name)(**options)``)."""
        return self.builder(**options)


def benchmark_spec(name: str) -> BenchmarkSpec:
    """The registered spec of ``name`` (an alias works); unknown names get "did you mean".

    Raises:
        UnknownNameError: no such benchmark.
        TypeError: the registry entry is not a BenchmarkSpec (a registration mistake).
    """
    from obliviate.benchmarks import BENCHMARKS

    spec = BENCHMARKS.get(name)
    if not isinstance(spec, BenchmarkSpec):
        raise TypeError(f"benchmark {name!r} must be registered as a BenchmarkSpec, got {spec!r}")
    return spec


def spec_of(task: UnlearningTask) -> BenchmarkSpec | None:
    """The spec of the benchmark that built ``task`` (``metadata["benchmark"]``), or None."""
    from obliviate.benchmarks import BENCHMARKS

    name = str(task.metadata.get("benchmark", ""))
    return benchmark_spec(name) if name in BENCHMARKS else None


