"""UnlearningTask: what must be forgotten, what must be kept, and what to evaluate on.

A task is saved as a folder (``obliviate prepare`` writes ``DIR/benchmark/``)::

    task.json            name, version, benchmark, metadata, split kinds, split roles, templates
    splits/<name>.jsonl  one record per line

so that a prepared benchmark is reloaded exactly, without regenerating it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.data.readers import decode_utf8, parse_json
from obliviate.data.records import RECORD_TYPES, Record, record_kind
from obliviate.errors import DataError

TASK_FILE = "task.json"
CORE_SPLITS = ("forget", "retain", "holdout")

ROLES: dict[str, str] = {
    "options": (
        "TOFU Prob is normalised over the answer options and the truth ratio compares the "
        "perturbed answers with the original answer (not a paraphrase)"
    ),
    "utility_retain": "model utility's retain split (the first one the task has; else `retain`)",
    "privleak": (
        "the member split of PrivLeak's Min-K% AUC (the first one the task has; else `forget`)"
    ),
}
"""The split roles a task may declare: role -> what a split in that role means to the metrics."""

DEFAULT_ROLES: dict[str, list[str]] = {
    "options": ["real_authors", "world_facts"],
    "utility_retain": ["retain_perturbed"],
    "privleak": ["privleak_forget"],
}
"""The roles of a task that declares none and whose benchmark is not registered."""


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
        roles: role (a key of :data:`ROLES`) -> split names, set by the benchmark's builder;
            None: :data:`DEFAULT_ROLES`.
    """

    name: str
    forget: list[Record]
    retain: list[Record]
    holdout: list[Record] = field(default_factory=list)
    splits: dict[str, list[Record]] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, list[str]] | None = None
    source: str = field(default="", compare=False)  # how the caller named it (a folder, a benchmark); not saved
    source_options: dict[str, Any] = field(default_factory=dict, compare=False)  # the builder options it was built with; not saved

    def check_items(self) -> None:
        """Refuse ids repeated within a split, and items that are both to forget and to keep.

        An item counts as in both splits when its id, or its content (everything but the id), is
        in both: unlearning it and keeping it at once is contradictory, and per-item results keyed
        by id would merge repeated items.

        Raises:
            DataError: naming the split, the ids and how to fix the data.
        """
        for split, records in self.all_splits().items():
            seen: set[str] = set()
            repeated = [str(r.id) for r in records if str(r.id) in seen or seen.add(str(r.id))]  # type: ignore[func-returns-value]
            if repeated:
                raise DataError(
                    f"task {self.name!r}: split {split!r} repeats the id {repeated[0]!r}"
                    f"{f' (and {len(repeated) - 1} more)' if len(repeated) > 1 else ''}; "
                    "give every item its own id"
                )

        def content(r: Record) -> str:
            return json.dumps(
                {k: v for k, v in r.to_dict().items() if k != "id"},
                sort_keys=True,
                ensure_ascii=False,
            )

        keep_ids = {str(r.id) for r in self.retain}
        keep = {content(r) for r in self.retain}
        both = [str(r.id) for r in self.forget if str(r.id) in keep_ids or content(r) in keep]
        if both:
            raise DataError(
                f"task {self.name!r}: {len(both)} forget item(s) are also in the retain split "
                f"(e.g. {both[0]!r}); an item cannot be both forgotten and kept: remove it "
                "from one of the two splits"
            )

    def fingerprint(self, splits: Sequence[str] | None = None) -> str:
        """A content hash (sha256, hex) of the name, the splits' records in
        order, and the templates.

        Equal for a task and its save/load round trip; different when any record changes. Runs
        record it, so a reference model evaluated on another benchmark is refused. Declared roles
        are part of it (a task without roles hashes as before roles existed). ``splits`` limits
        the hash to those splits (the reference check uses the forget, retain and holdout sets).
        """
        header: dict[str, Any] = {"name": self.name, "templates": self.templates}
        if self.roles is not None:
            header["roles"] = self.roles
        h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
        for split, records in self.all_splits().items():
            if splits is not None and split not in splits:
                continue
            h.update(f"\n[{split}]\n".encode())
            for r in records:
                h.update(json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False).encode())
                h.update(b"\n")
        return h.hexdigest()

    def __post_init__(self) -> None:
        if self.roles is None:
            return
        for role, splits in self.roles.items():
            if role not in ROLES:
                raise DataError(
                    f"task {self.name!r}: unknown split role {role!r}; the "
                    f"roles are: {', '.join(ROLES)}"
                )
            if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
                raise DataError(
                    f"task {self.name!r}: role {role!r} must list split names, got {splits!r}"
                )

    def role(self, role: str) -> list[str]:
        """The splits in ``role`` that this task has (non-empty), in declared order."""
        if role not in ROLES:
            raise DataError(f"unknown split role {role!r}; the roles are: {', '.join(ROLES)}")
        declared = (self.roles if self.roles is not None else DEFAULT_ROLES).get(role, [])
        splits = self.all_splits()
        return [s for s in declared if splits.get(s)]

    def has_role(self, split: str | None, role: str) -> bool:
        """Whether ``split`` is declared in ``role`` (whether or not it holds records)."""
        if role not in ROLES:
            raise DataError(f"unknown split role {role!r}; the roles are: {', '.join(ROLES)}")
        return split in (self.roles if self.roles is not None else DEFAULT_ROLES).get(role, [])

    def all_splits(self) -> dict[str, list[Record]]:
        """Core and named splits in one mapping."""
        return {
            "forget": self.forget,
            "retain": self.retain,
            "holdout": self.holdout,
            **self.splits,
        }

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
                        raise DataError(
                            f"split {split_name!r} mixes {kind} and {record_kind(r)} records"
                        )
                    f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
            tmp.replace(path)
        meta = {
            "name": self.name,
            "metadata": self.metadata,
            "templates": self.templates,
            "split_kinds": kinds,
        }
        if self.roles is not None:
            meta["roles"] = self.roles
        tmp = directory / (TASK_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(directory / TASK_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> UnlearningTask:
        """Read a task written by :meth:`save`, checking it on the way.

        Raises:
            DataError: no task.json; task.json is not valid JSON, lacks a key or holds one of the
                wrong type; a split file is missing; a record line is not a record of its split's
                kind (a missing or wrong-typed field); two records of a split share an id. The
                message names the file, the line or field, and how to fix it.
        """
        directory = Path(directory)
        meta_path = directory / TASK_FILE
        if not meta_path.is_file():
            raise DataError(
                f"{directory} is not a prepared benchmark (no {TASK_FILE}); "
                "create one with `obliviate prepare --out DIR` and pass DIR/benchmark"
            )
        try:
            meta = parse_json(decode_utf8(meta_path.read_bytes(), meta_path), meta_path)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{meta_path}: line {e.lineno}: invalid JSON ({e.msg}); {_REPREPARE}"
            ) from e
        _check_meta(meta, meta_path)
        splits: dict[str, list[Record]] = {}
        for split_name, kind in meta["split_kinds"].items():
            splits[split_name] = _read_split(directory / "splits" / f"{split_name}.jsonl", kind)
        metadata = dict(meta.get("metadata") or {})
        # A task.json written before tasks carried roles reads with DEFAULT_ROLES, which resolve to
        # the splits metrics used by name then (the data layer cannot ask the benchmarks above it).
        roles = meta.get("roles")
        try:
            return cls(
                name=meta["name"],
                forget=splits.pop("forget", []),
                retain=splits.pop("retain", []),
                holdout=splits.pop("holdout", []),
                splits=splits,
                templates=list(meta.get("templates") or []),
                metadata=metadata,
                roles=roles,
            )
        except DataError as e:  # a role that is not in the vocabulary
            raise DataError(f"{meta_path}: {e}; fix its 'roles' or {_REPREPARE}") from e


_REPREPARE = "re-create the folder with `obliviate prepare --out DIR` (or restore it from a copy)"
# task.json key -> (JSON type, required, what it must hold)
_META_KEYS: dict[str, tuple[type, bool, str]] = {
    "name": (str, True, "a string"),
    "split_kinds": (dict, True, "an object of split name -> record kind"),
    "metadata": (dict, False, "an object"),
    "templates": (list, False, "a list of strings"),
    "roles": (dict, False, "an object of role -> list of split names"),
}
_OPT_STR = (str, type(None))
# record kind -> field -> (accepted JSON types, required); a list field's items must be strings
_RECORD_FIELDS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "qa": {
        "question": ((str,), True),
        "answer": ((str,), True),
        "paraphrased_answer": (_OPT_STR, False),
        "perturbed_answers": ((list, type(None)), False),
        "paraphrased_question": (_OPT_STR, False),
        "id": ((str, int), False),
        "subject": ((str,), False),
    },
    "text": {
        "text": ((str,), True),
        "id": ((str, int), False),
        "prompt": (_OPT_STR, False),
        "continuation": (_OPT_STR, False),
        "subject": ((str,), False),
    },
    "mcq": {
        "question": ((str,), True),
        "choices": ((list,), True),
        "answer": ((int,), True),
        "id": ((str, int), False),
    },
}
_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _check_meta(meta: Any, path: Path) -> None:
    """Refuse a task.json that lacks a key, holds one of the wrong type or names an unknown kind."""
    if not isinstance(meta, dict):
        raise DataError(f"{path}: must hold a JSON object, got {type(meta).__name__}; {_REPREPARE}")
    for key, (typ, required, what) in _META_KEYS.items():
        if key not in meta:
            if required:
                raise DataError(f"{path}: key {key!r} is missing (it must be {what}); {_REPREPARE}")
            continue
        value = meta[key]
        if not isinstance(value, typ) and not (value is None and not required):
            raise DataError(
                f"{path}: key {key!r} must be {what}, got {type(value).__name__}; {_REPREPARE}"
            )
    for split, kind in meta["split_kinds"].items():
        if kind not in RECORD_TYPES:
            raise DataError(
                f"{path}: split_kinds.{split}: unknown record kind {kind!r}; the kinds are: "
                f"{', '.join(RECORD_TYPES)}; {_REPREPARE}"
            )
    if not all(isinstance(t, str) for t in meta.get("templates") or []):
        raise DataError(f"{path}: key 'templates' must be a list of strings; {_REPREPARE}")


def _read_split(path: Path, kind: str) -> list[Record]:
    """The records of one split file, each checked field by field; ids must be unique."""
    if not path.is_file():
        raise DataError(f"{path}: split file is missing (task.json lists it); {_REPREPARE}")
    fields = _RECORD_FIELDS[kind]
    records: list[Record] = []
    seen: dict[str, int] = {}
    text = decode_utf8(path.read_bytes(), path)
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}: line {lineno}"
        try:
            row = parse_json(line, path, lineno)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: invalid JSON ({e.msg}); {_REPREPARE}") from e
        if not isinstance(row, dict):
            raise DataError(
                f"{where}: a {kind} record must be a JSON object, got "
                f"{type(row).__name__}; {_REPREPARE}"
            )
        for name, (types, required) in fields.items():
            if name not in row:
                if required:
                    raise DataError(
                        f"{where}: field {name!r} is missing from a {kind} record; {_REPREPARE}"
                    )
                continue
            value = row[name]
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if ok and isinstance(value, list):
                ok = all(isinstance(v, str) for v in value)
            if not ok:
                wanted = " or ".join(_JSON_NAMES.get(t, t.__name__) for t in types)
                raise DataError(
                    f"{where}: field {name!r} must be {wanted}, got {value!r}; {_REPREPARE}"
                )
        try:
            record = RECORD_TYPES[kind].from_dict(row)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{where}: bad {kind} record ({e}); {_REPREPARE}") from e
        if record.id:
            if record.id in seen:
                raise DataError(
                    f"{where}: id {record.id!r} is already used on line {seen[record.id]}; ids "
                    f"must be unique within a split: {_REPREPARE}"
                )
            seen[record.id] = lineno
        records.append(record)
    return records
