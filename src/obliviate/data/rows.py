"""One raw row (a JSON object or a dataset row) -> one record (QA, Text, MCQ), with errors that name
the file, the place in it and the field. The field names each kind accepts are listed in
:mod:`obliviate.data.readers`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from obliviate.data.records import MCQ, QA, Record, Text
from obliviate.errors import DataError

_MISSING = object()
# left only by a lone JSON escape: a pair decodes to one character
_SURROGATE = re.compile("[\ud800-\udfff]")
REQUIRED = {"qa": "question, answer", "text": "text", "mcq": "question, choices, answer"}
# Names a field may have in a file, tried in order when field_map does not name it.
ALIASES = {
    "perturbed_answers": ("perturbed_answers", "perturbed_answer"),
    "continuation": ("gt", "continuation"),
}


def surrogate_problem(value: str) -> str | None:
    """Why ``value`` is not valid Unicode text (a lone surrogate), or None when it is.

    JSON may escape half of a UTF-16 pair (``"\\ud800"``) on its own; Python keeps it as a lone
    surrogate, which no tokenizer can encode and no UTF-8 file can hold.
    """
    m = _SURROGATE.search(value)
    if m is None:
        return None
    return (
        f"holds a lone surrogate \\u{ord(m.group()):04x} at character {m.start()} (an escape that "
        "is half of a UTF-16 pair), which is not valid Unicode text; complete the pair (e.g. "
        "\\ud83d\\ude00) or remove the escape"
    )


class MissingFieldError(DataError):
    """A record lacks a required field; ``field`` names it (the record's name for it) and
    ``present`` the fields the record has, so that a caller can say how to map the names."""

    def __init__(self, message: str, field: str, present: tuple[str, ...]) -> None:
        super().__init__(message)
        self.field, self.present = field, present


class _Row:
    """A raw row plus where it came from: typed field access with errors that name the field."""

    def __init__(self, row: dict[str, Any], where: str, field_map: Mapping[str, str]) -> None:
        self.row, self.where, self.field_map = row, where, field_map

    def name(self, field: str) -> str:
        if field in self.field_map:
            return self.field_map[field]
        names = ALIASES.get(field, (field,))
        return next((n for n in names if n in self.row), names[0])

    def error(self, field: str, problem: str) -> DataError:
        return DataError(f"{self.where}: field {self.name(field)!r}: {problem}")

    def missing(self, field: str) -> DataError:
        present = ", ".join(map(repr, self.row)) or "none"
        message = self.error(
            field,
            f"missing (present fields: {present}; if yours is named otherwise, "
            f"pass field_map={{{field!r}: 'your_field'}})",
        )
        return MissingFieldError(str(message), field, tuple(map(str, self.row)))

    def raw(self, field: str, required: bool = False) -> Any:
        name = self.name(field)
        value = self.row.get(name)
        if value is None and required:
            if name in self.row:
                raise self.error(  # there, but null: renaming it (field_map) would not help
                    field,
                    "missing its value: it is null, and every record needs one; fill it in or "
                    "drop the record",
                )
            raise self.missing(field)
        return _MISSING if value is None else value

    def string(self, field: str, required: bool = False) -> str | None:
        value = self.raw(field, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, got {type(value).__name__} {value!r:.60}")
        if (problem := surrogate_problem(value)) is not None:
            raise self.error(field, problem)
        if required and not value.strip():
            raise self.error(field, "is empty")
        return value

    def strings(self, field: str, required: bool = False) -> tuple[str, ...]:
        value = self.raw(field, required)
        if value is _MISSING:
            return ()
        if not isinstance(value, list | tuple):
            raise self.error(field, f"expected a list of strings, got {type(value).__name__}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(field, f"item {i}: expected a string, got {type(item).__name__}")
            if (problem := surrogate_problem(item)) is not None:
                raise self.error(field, f"item {i}: {problem}")
        return tuple(value)

    def ident(self, default: str) -> str:
        value = self.raw("id")
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error("id", f"expected a string or an integer, got {type(value).__name__}")
        if isinstance(value, str) and (problem := surrogate_problem(value)) is not None:
            raise self.error("id", problem)
        return str(value)


def row_to_record(
    row: Any, kind: str, where: str, field_map: Mapping[str, str] | None, default_id: str
) -> Record:
    """Turn one raw row (a dict, or a string for Text) into a record, or raise DataError.

    Args:
        row: the parsed row.
        kind: ``"qa"``, ``"text"`` or ``"mcq"``.
        where: ``"<file>: line N"`` (or ``item N`` / ``row N``) for error messages.
        field_map: record field -> field name in the file.
        default_id: the id to use when the row has none.
    """
    if kind == "text" and isinstance(row, str):
        if not row.strip():
            raise DataError(f"{where}: empty text")
        if (problem := surrogate_problem(row)) is not None:
            raise DataError(f"{where}: the text {problem}")
        return Text(text=row, id=default_id)
    if not isinstance(row, dict):
        raise DataError(
            f"{where}: expected an object with the {kind} fields {REQUIRED[kind]}, "
            f"got {type(row).__name__}"
        )
    r = _Row(row, where, field_map or {})
    if kind == "qa":
        return QA(
            question=r.string("question", True) or "",
            answer=r.string("answer", True) or "",
            paraphrased_answer=r.string("paraphrased_answer"),
            perturbed_answers=r.strings("perturbed_answers"),
            paraphrased_question=r.string("paraphrased_question"),
            id=r.ident(default_id),
            subject=r.string("subject") or "",
        )
    if kind == "text":
        return _text(r, default_id)
    return _mcq(r, default_id)


def _text(r: _Row, default_id: str) -> Text:
    prompt, continuation, text = r.string("prompt"), r.string("continuation"), r.string("text")
    if prompt is not None and continuation is None:
        raise r.error("continuation", "missing; a verbatim item needs 'prompt' and 'gt'")
    if text is None:
        if prompt is None or continuation is None:
            raise r.missing("text")
        # MUSE cut prompt and gt at a token boundary, which drops the space between them.
        edge = prompt[-1:] + continuation[:1]
        text = (
            prompt
            + (" " if len(edge) == 2 and not any(c.isspace() for c in edge) else "")
            + continuation
        )
    if not text.strip():
        raise r.error("text", "is empty")
    return Text(
        text=text,
        id=r.ident(default_id),
        prompt=prompt,
        continuation=continuation,
        subject=r.string("subject") or "",
    )


def _mcq(r: _Row, default_id: str) -> MCQ:
    question, choices = r.string("question", True) or "", r.strings("choices", True)
    if len(choices) < 2:
        raise r.error("choices", f"needs at least 2 options, got {len(choices)}")
    answer = r.raw("answer", True)
    if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha():
        index = ord(answer.strip().upper()) - ord("A")
    elif isinstance(answer, int) and not isinstance(answer, bool):
        index = answer
    else:
        raise r.error("answer", f"expected an index from 0 or a letter A-Z, got {answer!r:.60}")
    if not 0 <= index < len(choices):
        raise r.error("answer", f"{answer!r} is out of range for {len(choices)} choices")
    return MCQ(question=question, choices=choices, answer=index, id=r.ident(default_id))
