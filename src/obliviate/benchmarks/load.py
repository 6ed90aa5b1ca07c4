"""The one benchmark resolver: a prepared folder or a registered name, to an UnlearningTask.

:func:`load_benchmark` is what ``eval``, ``unlearn`` and the Python API call;
:func:`resolve_options` runs the same checks without building anything, so that a caller can
refuse a bad benchmark or a mistyped option before any model loads. A spec is resolved in this
order: an existing folder (a prepared benchmark: ``obliviate prepare`` writes ``DIR/benchmark``),
then a registered benchmark name (``obliviate ls benchmarks``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError
from obliviate.registry import suggest

if TYPE_CHECKING:
    from obliviate.data.task import UnlearningTask


def resolve_options(
    spec: str | os.PathLike, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check a benchmark spec and its builder options, and convert them; build nothing.

    Args:
        spec: a prepared benchmark folder or a registered benchmark name.
        options: the builder's options (command-line strings are converted to its annotated
            types); a prepared folder takes none.

    Returns:
        The options converted to the builder's types (``{}`` for a prepared folder).

    Raises:
        ConfigError: options given for a folder, a folder that does not exist, an unknown
            benchmark name or option ("did you mean"), or a value of the wrong type.
    """
    from obliviate.benchmarks import BENCHMARKS
    from obliviate.benchmarks.spec import benchmark_spec

    options = dict(options or {})
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        if options:
            raise ConfigError(
                f"--benchmark.* options apply to registered benchmarks; {path} is a prepared folder"
            )
        return {}
    if text in BENCHMARKS:
        bench = benchmark_spec(text)
        bench.check_options(options)
        return bench.coerce_options(options)
    if path.suffix or "/" in text or text.startswith("."):
        raise ConfigError(
            f"benchmark folder {text} does not exist; prepare one with "
            "`obliviate prepare --out DIR`"
        )
    raise ConfigError(
        f"benchmark {text!r} is neither a prepared benchmark folder nor a registered benchmark."
        f"{suggest(text, BENCHMARKS.names())} Registered: {', '.join(BENCHMARKS.names())}; "
        "prepare a folder with `obliviate prepare --out DIR` and pass DIR/benchmark."
    )


def load_benchmark(spec: str | os.PathLike, **options: Any) -> UnlearningTask:
    """A task from a prepared benchmark folder, or a registered benchmark built with ``options``.

    ``load_benchmark("prep/benchmark")``, ``load_benchmark("fictional", n_people=18)``,
    ``load_benchmark("tofu", path="data/tofu", forget="forget05")``. The options are checked and
    converted by :func:`resolve_options` first. The task records how it was named
    (``task.source``) and the converted options (``task.source_options``), which a run records.

    Raises:
        ConfigError: as :func:`resolve_options`, or a builder option the builder refuses.
        DataError: a prepared folder that is damaged, or benchmark files that are missing.
    """
    from obliviate.benchmarks.spec import benchmark_spec
    from obliviate.data.task import UnlearningTask

    typed = resolve_options(spec, options)
    text = os.fspath(spec)
    path = Path(text).expanduser()
    task = UnlearningTask.load(path) if path.is_dir() else benchmark_spec(text)(**typed)
    task.source, task.source_options = text, typed
    return task
