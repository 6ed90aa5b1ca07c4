"""Prompt formats, tokenization with answer-only labels, and collation.

The label convention follows TOFU: prompt tokens are labelled -100, so a loss covers the answer
tokens and exactly one end token. Tokenizers whose pad token equals their end token (SmolLM2, the
tiny model) are handled by building labels from positions, never by comparing token ids with the
pad id. Sequences that are too long lose tokens from the *prompt* side, so the answer survives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from obliviate.data.records import QA, Record, Text
from obliviate.errors import ConfigError, DataError
from obliviate.types import Batch, Tokenizer

IGNORE_INDEX = -100
FORMAT_STYLES = ("auto", "chat", "plain")
PromptStyle = Literal["auto", "chat", "plain"]

log = logging.getLogger(__name__)


class PromptFormatter:
    """Turns a question into the text a model sees before its answer.

    Args:
        tokenizer: the model's tokenizer.
        style: ``"chat"`` uses the tokenizer's chat template, ``"plain"`` writes
            ``Question: ...\\nAnswer:``, ``"auto"`` picks chat when the tokenizer has a template.
        system_prompt: replaces the chat template's default system message when given.
    """

    def __init__(
        self, tokenizer: Tokenizer, style: str = "auto", system_prompt: str | None = None
    ) -> None:
        if style not in FORMAT_STYLES:
            raise ConfigError(
                f"unknown prompt format {style!r}; choose one of {', '.join(FORMAT_STYLES)}"
            )
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if style == "chat" and not has_template:
            raise ConfigError(
                "prompt format 'chat' needs a tokenizer with a chat template; use 'plain'"
            )
        self.tokenizer = tokenizer
        self.style = "chat" if style == "chat" or (style == "auto" and has_template) else "plain"
        self.system_prompt = system_prompt
        if tokenizer.eos_token_id is None:
            raise ConfigError("the tokenizer has no end token (eos_token); set one before training")
        self.end_id: int = int(tokenizer.eos_token_id)
        self._leading: list[int] | None = None

    def prompt(self, question: str) -> str:
        """The text before the answer."""
        if self.style == "chat":
            messages = [{"role": "user", "content": question}]
            if self.system_prompt is not None:
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return f"Question: {question}\nAnswer:"

    def answer(self, answer: str) -> str:
        """The answer text as it follows the prompt."""
        return answer if self.style == "chat" else " " + answer.lstrip()

    def leading_special_ids(self) -> list[int]:
        """The special tokens this tokenizer puts before a text it encodes (Llama: BOS;
        GPT-2, SmolLM2: none).

        Found by encoding a probe text with and without special tokens, so it follows each
        tokenizer's own rule (``add_bos_token``, its post-processor) rather than a guess from
        ``bos_token_id``.
        """
        if self._leading is None:
            probe = "a"
            full = list(self.tokenizer(probe, add_special_tokens=True)["input_ids"])
            bare = list(self.tokenizer(probe, add_special_tokens=False)["input_ids"])
            self._leading = next(
                (
                    full[:i]
                    for i in range(len(full) - len(bare) + 1)
                    if full[i : i + len(bare)] == bare
                ),
                [],
            )
        return list(self._leading)

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids of a prompt, starting with the tokenizer's leading special tokens exactly once.

        One rule for every prompt, templated or raw: a chat-templated prompt that already starts
        with them (its template writes the BOS) gets none added; a plain prompt, a raw text's
        empty prompt and a VerbMem or KnowMem prompt get what the tokenizer itself would add
        (``add_special_tokens=True``), and nothing when it adds nothing.
        """
        lead = self.leading_special_ids()
        ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else []
        if lead and ids[: len(lead)] != lead:
            ids = lead + ids
        return ids

    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of an answer, without the end token."""
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"]


@dataclass
class Encoded:
    """One tokenized example: ids, answer-only labels, and whether the prompt was cut."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False


def encode_pair(
    formatter: PromptFormatter,
    prompt: str,
    answer: str,
    max_length: int = 512,
    add_end: bool = True,
) -> Encoded:
    """Tokenize ``prompt + answer``; labels cover the answer and one end token only.

    Args:
        formatter: gives the token ids of the two parts.
        prompt: the formatted prompt (``formatter.prompt(question)``), or ``""`` for raw text.
        answer: the answer text as it follows the prompt (``formatter.answer(...)``).
        max_length: the longest sequence; the prompt is cut from its start first.
        add_end: append and label the end token.
    """
    p = formatter.prompt_ids(prompt)
    a = formatter.answer_ids(answer) + ([formatter.end_id] if add_end else [])
    if not p and a:
        # Raw text under a tokenizer that adds no leading token: its first token has no context,
        # so it is context, not a label (what scoring the text as MUSE and
        # open-unlearning do gives).
        p, a = a[:1], a[1:]
    truncated = False
    if len(p) + len(a) > max_length:
        truncated = True
        keep = max(max_length - len(a), 0)
        p = p[len(p) - keep :] if keep else []
        if len(a) > max_length:
            a = a[:max_length]
    return Encoded(p + a, [IGNORE_INDEX] * len(p) + a, truncated)


def encode_qa(
    formatter: PromptFormatter, question: str, answer: str, max_length: int = 512
) -> Encoded:
    """Encode a question and answer in the formatter's prompt style."""
    return encode_pair(formatter, formatter.prompt(question), formatter.answer(answer), max_length)


def encode_text(formatter: PromptFormatter, text: str, max_length: int = 512) -> Encoded:
    """Encode raw text as a language-modelling example (no end token).

    Every token is labelled when the tokenizer puts a BOS first; without one the first token is
    unlabelled context (see :meth:`PromptFormatter.prompt_ids`).
    """
    return encode_pair(formatter, "", text, max_length, add_end=False)


def warn_truncated(encoded: Sequence[Encoded], what: str) -> None:
    """Log once how many examples lost prompt tokens to the length limit."""
    n = sum(e.truncated for e in encoded)
    if n:
        log.warning(
            "%d of %d %s examples were longer than max_length; their "
            "prompts were cut from the start",
            n,
            len(encoded),
            what,
        )


def collate(examples: Sequence[Encoded], pad_id: int, side: str = "right") -> dict[str, Any]:
    """Pad examples into tensors ``input_ids``, ``attention_mask`` and ``labels``.

    Padding positions get attention 0 and label -100, whatever the pad id is.
    """
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        sl = slice(0, n) if side == "right" else slice(width - n, width)
        ids[i, sl] = torch.tensor(e.input_ids, dtype=torch.long)
        labels[i, sl] = torch.tensor(e.labels, dtype=torch.long)
        mask[i, sl] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def encode_record(
    formatter: PromptFormatter, record: Record, max_length: int, answer: str | None = None
) -> Encoded:
    """Encode a QA (question + answer, or a replacement answer) or a Text for training."""
    if isinstance(record, QA):
        return encode_qa(
            formatter, record.question, record.answer if answer is None else answer, max_length
        )
    if isinstance(record, Text):
        return encode_text(formatter, record.text, max_length)
    raise DataError(f"cannot train on a {type(record).__name__} record; use QA or Text records")


def make_collate(pad_id: int) -> Any:
    """A collate function for items made by :func:`build_items` (or any dict of Encoded)."""
    import torch

    def collate_items(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items[0].items():
            if isinstance(value, Encoded):
                out[key] = collate([it[key] for it in items], pad_id)
            else:
                out[key] = torch.tensor([it[key] for it in items])
        return out

    return collate_items


def sft_items(
    records: Sequence[Record], formatter: PromptFormatter, max_length: int
) -> list[dict[str, Any]]:
    """Items for plain supervised fine-tuning (``obliviate prepare``, relearning)."""
    items = [{"forget": encode_record(formatter, r, max_length)} for r in records]
    warn_truncated([it["forget"] for it in items], "training")
    return items


def batches(
    items: Sequence[dict[str, Any]], collate: Callable[[list[Any]], dict[str, Any]], batch_size: int
) -> Iterator[dict[str, Any]]:
    """Collated batches of ``items`` in their order, ``batch_size`` items each (the last
    one may be smaller)."""
    for start in range(0, len(items), batch_size):
        yield collate(list(items[start : start + batch_size]))


def to_device(part: Batch, device: Any) -> dict[str, Any]:
    """One part of a batch (``batch["forget"]``: input ids, attention mask, labels)
    moved to ``device``."""
    return {k: v.to(device) for k, v in part.items()}
