"""Read records (QA, Text, MCQ) from user and benchmark files.

Supported inputs:

- ``.jsonl``: one JSON object per line (blank lines skipped).
- ``.json``: a list of objects, an object holding such a list under ``"data"`` or ``"records"``,
  or JSON-lines content (TOFU's released ``*.json`` files are JSON lines).
- ``.parquet``: needs ``pyarrow`` (``pip install obliviate[datasets]``).
- ``.txt`` (Text only): MUSE's ``raw/*.txt`` files are plain text. ``txt_mode="paragraph"`` (the
  default) gives one Text per block separated by blank lines, ``"line"`` one per non-empty line,
  ``"whole"`` one Text for the whole file.
- :func:`read_hf_dataset`: a ``datasets`` folder (``save_to_disk`` output or a folder of data
  files) or a Hugging Face hub name when the machine is online.

Field names (``field_map`` maps a record field to the name used in the file):

- qa: ``question``, ``answer`` (required); ``paraphrased_answer``, ``paraphrased_question``;
  ``perturbed_answers`` or TOFU's ``perturbed_answer`` (a list of strings); ``id``, ``subject``.
- text: ``text``; or MUSE verbmem ``prompt`` + ``gt`` (``continuation`` also accepted), whose
  ``text`` is prompt + gt with one space put back where neither side has whitespace at the seam
  (MUSE cut them at a Llama token boundary, which loses it); a bare JSON string (MUSE privleak
  files) is a Text too.
- mcq: ``question``, ``choices`` (list of strings), ``answer`` (index from 0, or a letter A, B...).

Every error is a :class:`~obliviate.errors.DataError` naming the file, the place in it (``line N``
counts from 1 as an editor does; ``item N`` and ``row N`` count from 0) and the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from obliviate.data.records import RECORD_TYPES, Record
from obliviate.data.rows import row_to_record
from obliviate.errors import DataError

Kind = Literal["qa", "text", "mcq"]
TxtMode = Literal["paragraph", "line", "whole"]

EXTENSIONS = (".jsonl", ".json", ".parquet", ".txt")
TXT_MODES = ("paragraph", "line", "whole")
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}
DATASETS_HINT = "pip install obliviate[datasets]"


def read_records(
    path: str | Path,
    kind: Kind = "qa",
    field_map: Mapping[str, str] | None = None,
    *,
    txt_mode: TxtMode = "paragraph",
) -> list[Record]:
    """Read every record of one file.

    Args:
        path: a ``.jsonl``, ``.json``, ``.parquet`` or (Text only) ``.txt`` file.
        kind: the record type: ``"qa"``, ``"text"`` or ``"mcq"``.
        field_map: record field -> field name in the file, e.g. ``{"question": "prompt"}``.
        txt_mode: how a ``.txt`` file is cut into Texts: ``"paragraph"``, ``"line"`` or ``"whole"``.

    Returns:
        The records in file order. A record without an ``id`` gets ``"<file stem>-<index>"``.

    Raises:
        DataError: the file is missing, empty, of an unknown type, or holds a bad record.
    """
    return _read_path(Path(path), kind, field_map, txt_mode, Path(path).stem, 0)


def read_files(
    paths: Sequence[str | Path],
    kind: Kind = "qa",
    field_map: Mapping[str, str] | None = None,
    *,
    id_prefix: str,
    txt_mode: TxtMode = "paragraph",
) -> list[Record]:
    """Read several files (the shards of one split) into one list.

    Records without an ``id`` are numbered ``"<id_prefix>-<index>"`` across all the shards.
    """
    if not paths:
        raise DataError(f"no files given for split {id_prefix!r}")
    out: list[Record] = []
    for p in paths:
        out.extend(_read_path(Path(p), kind, field_map, txt_mode, id_prefix, len(out)))
    return out


def find_split_files(folder: str | Path, name: str) -> list[Path]:
    """The files that hold split ``name`` in ``folder``, or ``[]`` when there are none.

    Looked for, in this order: ``name.jsonl``, ``name.json``, ``name.parquet``, ``name.txt``;
    Hugging Face shards ``name-*.parquet``; a sub-folder ``name/`` of ``*.parquet`` /
    ``*.jsonl`` / ``*.json`` files (the layout of a downloaded hub dataset).
    """
    folder = Path(folder)
    for ext in EXTENSIONS:
        if (folder / f"{name}{ext}").is_file():
            return [folder / f"{name}{ext}"]
    shards = sorted(folder.glob(f"{name}-*.parquet"))
    if shards:
        return shards
    sub = folder / name
    if sub.is_dir():
        for ext in (".parquet", ".jsonl", ".json"):
            shards = sorted(sub.rglob(f"*{ext}"))
            if shards:
                return shards
    return []


def near_misses(folder: str | Path, name: str) -> list[str]:
    """What ``folder`` holds under ``name`` that :func:`find_split_files` cannot read, each said as
    what it is and what is expected: a folder named like a file, a file of another type (a CSV),
    a sub-folder without data files. ``[]`` when there is nothing of the kind."""
    import glob

    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = ", ".join(EXTENSIONS[:3])
    found: list[str] = []
    for p in sorted(folder.glob(f"{glob.escape(name)}.*")):
        ext = p.suffix
        if p.is_dir():
            found.append(f"{p.name} is a folder, where a {ext} file is expected")
        elif ext.lower() == ".csv":
            found.append(
                f"{p.name} is a CSV file, which obliviate does not read; expected a {wanted} "
                f"file: convert it, e.g. pandas.read_csv('{p.name}').to_json('{name}.jsonl', "
                "orient='records', lines=True)"
            )
        elif ext.lower() in EXTENSIONS and ext != ext.lower():
            found.append(f"{p.name}: rename it to {name}{ext.lower()} (extensions in lower case)")
        elif ext.lower() not in EXTENSIONS:
            found.append(f"{p.name} is a {ext} file; expected a {wanted} file")
    sub = folder / name
    if sub.is_dir() and not find_split_files(folder, name):
        found.append(f"{name}/ is a folder without .parquet, .jsonl or .json files in it")
    return found


def parse_field_map(
    value: str | Mapping[str, str] | None, kind: Kind = "qa", flag: str = "field_map"
) -> dict[str, str]:
    """A ``field_map`` from Python (a dict) or the command line (``"question=prompt,answer=out"``).

    Keys are the record's field names (:class:`~obliviate.data.records.QA` ...), values the names
    used in the file.

    Raises:
        ConfigError: an item that is not ``field=name``, or a key that is no field of the record.
    """
    import dataclasses

    from obliviate.errors import ConfigError
    from obliviate.registry import suggest

    if value is None:
        return {}
    if isinstance(value, str):
        pairs: dict[str, str] = {}
        for item in (i.strip() for i in value.split(",")):
            key, eq, name = (part.strip() for part in item.partition("="))
            if not item:
                continue
            if not (eq and key and name):
                raise ConfigError(
                    f"{flag}: {item!r} is not field=name; write it like "
                    "question=prompt,answer=completion (the record's field = the file's name)"
                )
            pairs[key] = name
        value = pairs
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(
            f"{flag}: expected a mapping of record field -> field name in the file, like "
            f"{{'question': 'prompt'}}, got {value!r:.80}"
        )
    fields = [f.name for f in dataclasses.fields(RECORD_TYPES[kind])]
    for key in value:
        if key not in fields:
            raise ConfigError(
                f"{flag}: {key!r} is not a field of a {kind} record.{suggest(key, fields)} "
                f"Its fields: {', '.join(fields)}"
            )
    return dict(value)


def _read_path(
    path: Path,
    kind: str,
    field_map: Mapping[str, str] | None,
    txt_mode: str,
    id_prefix: str,
    id_offset: int,
) -> list[Record]:
    if kind not in RECORD_TYPES:
        raise DataError(f"unknown record kind {kind!r}; use one of: {', '.join(RECORD_TYPES)}")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path} is a folder; pass one file, or use read_hf_dataset for a folder")
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataError(
            f"{path}: unknown file type {ext or '(none)'!r}; "
            f"use one of {', '.join(EXTENSIONS)} (convert CSV with pandas.read_csv(...).to_json)"
        )
    if ext == ".parquet":
        rows: Iterable[tuple[str, Any]] = _parquet_rows(path)
    else:
        text = _read_text(path)
        if ext == ".txt":
            rows = _txt_rows(path, text, kind, txt_mode)
        elif ext == ".jsonl":
            rows = _jsonl_rows(path, text)
        else:
            rows = _json_rows(path, text)
    records = [
        row_to_record(row, kind, where, field_map, f"{id_prefix}-{id_offset + i}")
        for i, (where, row) in enumerate(rows)
    ]
    if not records:
        raise DataError(f"{path}: holds no records; a split needs at least one {kind} record")
    return records


def _read_text(path: Path) -> str:
    text = decode_utf8(path.read_bytes(), path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    return text


def decode_utf8(data: bytes, path: Path | str) -> str:
    """``data`` as text (a UTF-8 byte-order mark is dropped), or a DataError
    naming the file and line.

    Raises:
        DataError: ``data`` is not valid UTF-8 (the message gives the line and the byte's offset).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {col}, "
            f"offset {e.start}); re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from e


def parse_json(text: str, path: Path | str, first_line: int = 1) -> Any:
    """``json.loads(text)``, turning a structure nested too deeply to parse into a DataError.

    Args:
        text: the JSON text (a whole ``.json`` file, or one line of a ``.jsonl`` file).
        path: the file, for the message.
        first_line: the line of the file on which ``text`` starts.

    Raises:
        json.JSONDecodeError: ``text`` is not valid JSON (callers word their own message).
        DataError: brackets nested so deeply that Python's parser gives up (RecursionError); the
            message names the line where the nesting passes :data:`MAX_DEPTH` levels.
    """
    try:
        return json.loads(text)
    except RecursionError:
        line, col = _deep_point(text)
        raise DataError(
            f"{path}: line {first_line + line - 1}: JSON nested too deeply to read (its "
            f"brackets pass {MAX_DEPTH} levels at column {col}); a record is one flat object of "
            "strings and lists of strings"
        ) from None


MAX_DEPTH = 100  # nesting a record never needs; where a too-deep file first passes it is reported


def _deep_point(text: str) -> tuple[int, int]:
    """(line, column), from 1, where brackets outside strings first nest deeper than MAX_DEPTH."""
    depth, in_string, escaped, line, col = 0, False, False, 1, 0
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        elif in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, col
        elif ch in "]}":
            depth -= 1
    return 1, 1


def _jsonl_rows(path: Path, text: str) -> list[tuple[str, Any]]:
    rows = []
    # split at "\n" only: str.splitlines also cuts at U+2028, U+0085..., which JSON strings may hold
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append((f"{path}: line {lineno}", parse_json(line, path, lineno)))
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}: line {lineno}: invalid JSON ({e.msg} at column {e.colno}); "
                "each line must be one complete JSON object"
            ) from e
    return rows


def _json_rows(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = parse_json(text, path)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" or _looks_like_json_lines(text):
            return _jsonl_rows(path, text)  # JSON lines in a .json file, as TOFU ships them
        raise DataError(
            f"{path}: line {e.lineno}: invalid JSON ({e.msg} at column {e.colno})"
        ) from e
    if isinstance(data, dict):
        for key in ("data", "records"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            return [(f"{path}: line 1", data)]  # a single object: JSON lines with one line
    if not isinstance(data, list):
        raise DataError(
            f"{path}: expected a JSON list of records (or an object with a 'data' list), "
            f"got {type(data).__name__}"
        )
    return [(f"{path}: item {i}", item) for i, item in enumerate(data)]


def _looks_like_json_lines(text: str) -> bool:
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except (json.JSONDecodeError, RecursionError):
        return False


def _parquet_rows(path: Path) -> list[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise DataError(f"reading {path} needs pyarrow: {DATASETS_HINT}") from e
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError...
        raise DataError(f"{path}: not a readable Parquet file ({e})") from e
    return [(f"{path}: row {i}", row) for i, row in enumerate(table.to_pylist())]


def _txt_rows(path: Path, text: str, kind: str, txt_mode: str) -> list[tuple[str, Any]]:
    if kind != "text":
        raise DataError(f"{path}: a .txt file holds text; read it with kind='text', not {kind!r}")
    if txt_mode not in TXT_MODES:
        raise DataError(f"unknown txt_mode {txt_mode!r}; use one of: {', '.join(TXT_MODES)}")
    if txt_mode == "whole":
        return [(f"{path}: line 1", text.strip())]
    # "line": every non-blank line; "paragraph": every run of non-blank lines.
    pattern = r"^.*\S.*$" if txt_mode == "line" else r"^.*\S.*(?:\n.*\S.*)*"
    return [
        (f"{path}: line {text.count(chr(10), 0, m.start()) + 1}", m.group().strip())
        for m in re.finditer(pattern, text, flags=re.MULTILINE)
    ]


def read_hf_dataset(
    name_or_path: str | Path,
    split: str,
    kind: Kind,
    config: str | None = None,
    field_map: Mapping[str, str] | None = None,
) -> list[Record]:
    """Read one split of a dataset through the ``datasets`` library.

    Args:
        name_or_path: a local file (read by :func:`read_records`; ``split`` is then unused), a
            local folder (``save_to_disk`` output, or data files that ``load_dataset`` can read),
            or a hub name such as ``"locuslab/TOFU"`` (online only).
        split: the split, e.g. ``"train"``. A folder saved from a single ``Dataset`` has one.
        kind: ``"qa"``, ``"text"`` or ``"mcq"``.
        config: the hub configuration (``"forget10_perturbed"``), if the dataset has several.
        field_map: record field -> column name.

    Raises:
        DataError: the dataset cannot be found or loaded, or a row is bad. With
            ``HF_HUB_OFFLINE=1`` or ``HF_DATASETS_OFFLINE=1`` a name that is neither a local
            path nor in the local cache fails at once instead of retrying the network.
    """
    local = Path(name_or_path)
    name = str(name_or_path)
    if local.is_file():
        return read_records(local, kind, field_map)
    offline = [v for v in OFFLINE_VARS if os.environ.get(v, "").strip().lower() in _TRUE]
    if not local.exists() and offline and not _in_hub_cache(name):
        raise DataError(
            f"{name!r} is not a local file or folder, and {'/'.join(offline)}=1 keeps the hub "
            "off. Fix the path, pass a folder that holds the files, or unset the variable on a "
            "machine that is online to download it."
        )
    try:
        import datasets
    except ImportError as e:
        raise DataError(f"loading {name} needs the datasets library: {DATASETS_HINT}") from e
    where = f"{name}" + (f" (config {config!r})" if config else "") + f" [{split}]"
    try:
        if any((local / f).is_file() for f in ("dataset_dict.json", "state.json")):
            loaded = datasets.load_from_disk(str(local))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DataError(
                        f"{where}: no split {split!r}; this dataset has: {', '.join(loaded)}"
                    )
                loaded = loaded[split]
        else:
            loaded = datasets.load_dataset(name, config, split=split)
    except DataError:
        raise
    except Exception as e:  # datasets raises many unrelated types
        raise DataError(f"{where}: cannot load ({type(e).__name__}: {e})") from e
    rows = loaded.to_list()
    if not rows:
        raise DataError(f"{where}: holds no records")
    prefix = config or local.name or name.replace("/", "-")
    return [
        row_to_record(row, kind, f"{where}: row {i}", field_map, f"{prefix}-{i}")
        for i, row in enumerate(rows)
    ]


def _in_hub_cache(name: str) -> bool:
    """Whether ``owner/name`` was downloaded before (hub cache or datasets cache)."""
    if name.count("/") != 1:
        return False
    owner, repo = name.split("/")
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    hub = Path(os.environ.get("HF_HUB_CACHE", home / "hub"))
    if (hub / f"datasets--{owner}--{repo}").is_dir():
        return True
    ds_cache = Path(os.environ.get("HF_DATASETS_CACHE", home / "datasets"))
    wanted = f"{owner}___{repo}".lower()
    return ds_cache.is_dir() and any(p.name.lower() == wanted for p in ds_cache.iterdir())
