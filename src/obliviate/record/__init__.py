"""The run record: run.json's data, read through :class:`RunRecord`, written by one :class:`Recorder`.

- :mod:`obliviate.record.store`: the file (read, upgrade from older schemas, atomic locked write).
- :mod:`obliviate.record.run`: :class:`RunRecord`, the reader, with a property per section.
- :mod:`obliviate.record.recorder`: :class:`Recorder`, the only writer (on disk or in memory).
- :mod:`obliviate.record.identity`: what makes stored results reusable, and the identity digest.
- :mod:`obliviate.record.schema`: the typed sections and the published JSON Schema.
"""

from obliviate.record.identity import identity_digest
from obliviate.record.recorder import Recorder
from obliviate.record.run import Results, RunRecord
from obliviate.record.store import RUN_FILE, SCHEMA_VERSION, load_reference, read_run, run_file

__all__ = [
    "RUN_FILE",
    "SCHEMA_VERSION",
    "Recorder",
    "Results",
    "RunRecord",
    "identity_digest",
    "load_reference",
    "read_run",
    "run_file",
]
