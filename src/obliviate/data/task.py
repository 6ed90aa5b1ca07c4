"""UnlearningTask: what must be forgotten, what must be kept, and what to evaluate on.

A task is saved as a folder (``obliviate prepare`` writes ``DIR/benchmark/``)::

    task.json            name, version, benchmark, metadata, split kinds, templates
    splits/<name>.jsonl  one record per line

so that a prepared benchmark is reloaded exactly, without regenerating it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.data.records import RECORD_TYPES, Record, record_kind
from obliviate.errors import DataError

TASK_FILE = "task.json"
CORE_SPLITS = ("forget", "retain", "holdout")


@dataclass
class UnlearningTask:
    """Everything a method and an evaluation need about one unlearning request.

    Attributes:
        name: the benchmark and configuration, e.g. ``"fictional@1/forget10"``.
        forget: the items to forget.
        retain: the items to keep (what the retain-only oracle is trained on).
        holdout: items never trained on: the non-members for membership inference.
        splits: further named evaluation splits (``"real_authors"``, ``"world_facts"``,
            ``"forget_bio"``...).
        templates: template answers (refusals) for IDK-style methods and FLAT.
        metadata: benchmark identity and generation parameters (version, seed, sizes).
    """

    name: str
    forget: list[Record]
    retain: list[Record]
    holdout: list[Record] = field(default_factory=list)
    splits: dict[str, list[Record]] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="", compare=False)  # how the caller named it (a folder, a benchmark); not saved
    source_options: dict[str, Any] = field(default_factory=dict, compare=False)  # the builder options it was built with; not saved

    def fingerprint(self) -> str:
        """A content hash (sha256, hex) of the name, every split's records in order, and the templates.

        Equal for a task and its save/load round trip; different when any record changes. Runs
        record it, so a reference model evaluated on another benchmark is refused.
        """
        h = hashlib.sha256(json.dumps({"name": self.name, "templates": self.templates}, sort_keys=True).encode())
        for split, records in self.all_splits().items():
            h.update(f"\n[{split}]\n".encode())
            for r in records:
                h.update(json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False).encode())
                h.update(b"\n")
        return h.hexdigest()

    def all_splits(self) -> dict[str, list[Record]]:
        """Core and named splits in one mapping."""
        return {"forget": self.forget, "retain": self.retain, "holdout": self.holdout, **self.splits}

    def split(self, name: str) -> list[Record]:
        """One split by name, with a clear error listing the split names on a miss."""
        splits = self.all_splits()
        if name not in splits:
            raise DataError(
                f"task {self.name!r} has no split {name!r}; its splits are: {', '.join(splits)}"
            )
        return splits[name]

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", ""))

    def save(self, directory: str | Path) -> Path:
        """Write the task into ``directory`` (created; must not hold another task)."""
        directory = Path(directory)
        (directory / "splits").mkdir(parents=True, exist_ok=True)
        kinds: dict[str, str] = {}
        for split_name, records in self.all_splits().items():
            kind = record_kind(records[0]) if records else "qa"
            kinds[split_name] = kind
            path = directory / "splits" / f"{split_name}.jsonl"
            tmp = path.with_suffix(".jsonl.tmp")
            with tmp.open("w", encoding="utf-8") as f:
                for r in records:
                    if record_kind(r) != kind:
                        raise DataError(f"split {split_name!r} mixes {kind} and {record_kind(r)} records")
                    f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
            tmp.replace(path)
        meta = {
            "name": self.name,
            "metadata": self.metadata,
            "templates": self.templates,
            "split_kinds": kinds,
        }
        tmp = directory / (TASK_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(directory / TASK_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> UnlearningTask:
        """Read a task written by :meth:`save`."""
        directory = Path(directory)
        meta_path = directory / TASK_FILE
        if not meta_path.is_file():
            raise DataError(
                f"{directory} is not a prepared benchmark (no {TASK_FILE}); "
                "create one with `obliviate prepare --out DIR` and pass DIR/benchmark"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"{meta_path}: line {e.lineno}: invalid JSON ({e.msg})") from e
        splits: dict[str, list[Record]] = {}
        for split_name, kind in meta["split_kinds"].items():
            cls_ = RECORD_TYPES[kind]
            path = directory / "splits" / f"{split_name}.jsonl"
            records: list[Record] = []
            with path.open(encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        records.append(cls_.from_dict(json.loads(line)))
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                        raise DataError(f"{path}: line {lineno}: bad {kind} record ({e})") from e
            splits[split_name] = records
        return cls(
            name=meta["name"],
            forget=splits.pop("forget", []),
            retain=splits.pop("retain", []),
            holdout=splits.pop("holdout", []),
            splits=splits,
            templates=list(meta.get("templates", [])),
            metadata=dict(meta.get("metadata", {})),
        )
