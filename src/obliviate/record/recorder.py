"""The one writer of run records: :class:`Recorder`.

Every run kind writes its record through a recorder: into ``OUT/run.json`` (or the kind's own
record file, such as ``protocol.json``) under a file lock and atomically, or in memory when the run
has no output folder. The recorder also owns the run's status: :meth:`Recorder.failing` marks a run
that raised as ``failed`` (with the error) or ``interrupted`` (Ctrl-C), so a run.json never says
``running`` for a run that is over, and the report can refuse it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from obliviate.record.store import RUN_FILE, SCHEMA_VERSION, _strict, read_run, update_run

Change = Callable[[dict[str, Any]], dict[str, Any]]

STATUSES = ("running", "completed", "stopped", "diverged", "failed", "interrupted")
"""Every status a record can have (``completed``, ``stopped`` and ``diverged`` are finished)."""


def now() -> str:
    """The current time as run records state it (UTC, ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Recorder:
    """Writes one run's record; the only writer of run data.

    Args:
        out: the run folder (None: the record lives in memory only, in :attr:`data`).
        file: the record's file name inside ``out``.
        schema: the schema version stamped into the file.
    """

    def __init__(
        self, out: str | Path | None, file: str = RUN_FILE, *, schema: int = SCHEMA_VERSION
    ) -> None:
        self.out = Path(out) if out is not None else None
        self.file = file
        self.schema = schema
        self.data: dict[str, Any] = {}
        if self.path is not None and self.path.is_file():
            self.data = read_run(self.path) if schema == SCHEMA_VERSION else _read_plain(self.path)

    @property
    def path(self) -> Path | None:
        """The record's file (None in memory)."""
        return self.out / self.file if self.out is not None else None

    def update(self, change: Change) -> dict[str, Any]:
        """Apply ``change`` to the stored data (read afresh under the lock) and write it; returns it."""
        if self.path is None:
            self.data = _strict({**change(dict(self.data)), "schema": self.schema})
            return self.data
        self.data = update_run(self.path, change, schema=self.schema)
        return self.data

    def merge(self, sections: Mapping[str, Any]) -> dict[str, Any]:
        """Set top-level sections (each replaces the stored one of that name)."""
        return self.update(lambda data: {**data, **sections})

    def replace(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the whole record."""
        return self.update(lambda _: dict(data))

    def start(self, header: Mapping[str, Any]) -> dict[str, Any]:
        """Begin (or resume) the run: the header's sections, status ``running``."""
        return self.merge({**header, "status": "running", "started_at": now()})

    def fail(self, error: BaseException) -> None:
        """Mark the run as over without a result: ``interrupted`` for Ctrl-C, else ``failed`` with why."""
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        reason = str(error) or type(error).__name__
        failure = {"error": type(error).__name__, "message": reason[:2000]}
        with contextlib.suppress(Exception):  # the original error matters more than a failed write
            self.merge({"status": status, "failure": failure, "finished_at": now()})

    @contextlib.contextmanager
    def failing(self) -> Iterator[Recorder]:
        """Within this block, an exception marks the run failed (or interrupted) and propagates."""
        try:
            yield self
        except BaseException as e:
            self.fail(e)
            raise


def _read_plain(path: Path) -> dict[str, Any]:
    import json

    from obliviate.errors import DataError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            f"{path}: not valid JSON ({e}); move it aside or start over with --overwrite"
        ) from e
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: the top level must be an object; move it aside or start over with --overwrite"
        )
    return data


__all__ = ["STATUSES", "Recorder", "now"]
