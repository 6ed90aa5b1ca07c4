"""The attack interface: what an attack gets, what it hands back, and how it is named.

An attack never changes the model it is given. It returns an :class:`Attacked`: the model (or
Scorer) and the task to evaluate again, the forget items its verdict covers, and what the run
record keeps about it (scheme, library, steps). The runner (:mod:`obliviate.runs.attack_run`)
then evaluates the benchmark's own forget metrics on that pair, for the unlearned model and for
the retain-only model under the same attack, and stores both in the run.

Kinds:

- ``"prompts"``: the same model, the forget questions asked another way (rephrase, few-shot,
  adversarial, in-context): :meth:`Attack.apply` returns a task whose forget questions changed;
- ``"weights"``: a changed copy of the model (relearn, quantize), on the same or a held-back task;
- ``"white_box"``: reads the model's insides and returns its own per-item results
  (:attr:`Attacked.results`) instead of a task to evaluate.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from obliviate.data.records import QA
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError
from obliviate.types import Model

AttackKind = Literal["prompts", "weights", "white_box"]


@dataclass
class AttackContext:
    """What an attack reads.

    Attributes:
        model: the model under attack (a :class:`~obliviate.models.io.LoadedModel`); never changed.
        task: the benchmark task the run was evaluated on.
        prompt_format: the prompt format the model's evaluation used (``chat`` or ``plain``).
        seed: seeds every random choice of the attack (subsets, shot order, training).
        role: ``"unlearned"`` or ``"reference"`` (the retain-only model under the same attack);
            an attack must treat both alike, and may use it only in messages.
        progress: show progress bars.
    """

    model: Model
    task: UnlearningTask
    prompt_format: str = "auto"
    seed: int = 0
    role: str = "unlearned"
    progress: bool = False


@dataclass
class Attacked:
    """What an attack hands back.

    Attributes:
        model: what to evaluate: a LoadedModel (a changed copy, or the one given) or a Scorer.
        task: the task to evaluate (changed prompts, or only the held-back forget items).
        items: the forget item ids the verdict may judge from this attack (None: every item of
            ``task``'s forget split); relearning leaves out the items it trained on.
        details: what run.json keeps about the attack (library, scheme, steps, prompts used).
        results: a white-box attack's own results (metric key -> entry with ``values``,
            ``item_ids``, ``aggregate``, ``direction``), used instead of evaluating ``task``.
    """

    model: Model
    task: UnlearningTask
    items: list[str] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] | None = None


class Attack(abc.ABC):
    """Base class of attacks (one level of inheritance at most below the family's module).

    Subclasses set ``name``, ``kind`` and ``config_cls`` (a dataclass of typed, defaulted,
    one-line-documented options, given on the command line as ``--ATTACK.option value``) and
    implement :meth:`apply`; :meth:`check` refuses a task the attack cannot run on, before any
    model loads.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[AttackKind] = "prompts"
    config_cls: ClassVar[type] = object

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def label(self) -> str:
        """The name its results are stored under (``quantize-4bit``: an attack run twice with
        different options)."""
        return self.name

    def check(self, task: UnlearningTask) -> None:
        """Raise ConfigError if this attack cannot run on ``task`` (default: it needs
        QA forget items)."""
        require_qa_forget(task, self.name)

    @abc.abstractmethod
    def apply(self, ctx: AttackContext) -> Attacked:
        """Attack ``ctx.model`` on ``ctx.task``; never change ``ctx.model``."""


def require_qa_forget(task: UnlearningTask, attack: str) -> list[QA]:
    """The task's forget items, which must be question-answer pairs for ``attack``."""
    items = list(task.forget)
    if not items:
        raise ConfigError(f"attack {attack!r} needs forget items, and task {task.name!r} has none")
    if not all(isinstance(q, QA) for q in items):
        raise ConfigError(
            f"attack {attack!r} asks the forget questions another way, and the forget split of "
            f"{task.name!r} holds texts, not question-answer pairs; use a QA benchmark "
            "(fictional, tofu) or the relearn, quantize attacks"
        )
    return items  # type: ignore[return-value]


def with_forget(task: UnlearningTask, forget: list[Any], suffix: str) -> UnlearningTask:
    """A copy of ``task`` whose forget split is ``forget`` (the other splits are shared, unchanged).

    The copy's name gains ``+suffix`` so that a run record never mistakes it for the benchmark.
    """
    import dataclasses

    return dataclasses.replace(task, forget=list(forget), name=f"{task.name}+{suffix}")


def resolve_attack(name: str, options: dict[str, Any] | None = None) -> Attack:
    """Look up an attack and build its config from options (fails fast on a typo)."""
    from obliviate.attacks import ATTACKS
    from obliviate.config import build

    cls = ATTACKS.get(name)
    config = build(cls.config_cls, options or {}, where=cls.name, owner=f"attack {cls.name}")
    return cls(config)
