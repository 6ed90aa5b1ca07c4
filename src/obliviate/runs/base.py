"""The run-kind protocol: what a new kind of run fills in, and the lifecycle it gets for free.

A run kind is one object with a name, its record file, what it writes into its folder, and three
steps::

    class Count(RunKind[CountRequest, CountPlan]):
        name = "count"

        def plan(self, request):          # check everything; load no model
            ...
        def identity(self, plan):         # what a resume must match
            ...
        def execute(self, plan, recorder):  # do the work; write through the recorder
            ...

:func:`launch` runs it: the plan first (a bad input fails before anything is written), then the
shared checks of :mod:`obliviate.runs.checks` (the output is no input and holds none; the one
resume / overwrite decision; a resume only with the same identity), the record's header, the
work inside :meth:`Recorder.failing` (a run that raises is marked ``failed`` with its reason, a
Ctrl-C ``interrupted``), and ``completed`` at the end. A finished run found again is returned as
it is, without recomputing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from obliviate.record import Recorder, RunRecord, identity_digest
from obliviate.record.recorder import now
from obliviate.runs.checks import check_output, check_same_identity, clear_owned, decide_output

RequestT = TypeVar("RequestT", bound="OutputOptions")
PlanT = TypeVar("PlanT")


@dataclass
class OutputOptions:
    """Where a run writes and what it may do with what is there (every request has these)."""

    out: str | Path | None = None  # the run folder (None: keep the record in memory)
    resume: bool = False  # continue the run in out (only with the same identity)
    overwrite: bool = (
        False  # replace what an earlier run of this kind wrote into out (never other files)
    )


class RunKind(ABC, Generic[RequestT, PlanT]):
    """A kind of run: plan without loading a model, give the plan's identity, execute with a recorder."""

    name: str = ""
    record_file: str = "run.json"
    owned: tuple[str, ...] = ()  # what it writes into its folder besides its record ("model", ...)

    @abstractmethod
    def plan(self, request: RequestT) -> PlanT:
        """Check the request (options, inputs) and build the plan; load no model, write nothing."""

    @abstractmethod
    def identity(self, plan: PlanT) -> dict[str, Any]:
        """What makes a stored run of this plan reusable (a resume must match it exactly)."""

    def inputs(self, plan: PlanT) -> tuple[Path | None, ...]:
        """The folders the run reads (its output may be none of them, nor inside or around them)."""
        return ()

    @abstractmethod
    def execute(self, plan: PlanT, recorder: Recorder) -> dict[str, Any]:
        """Do the work; return the sections the record gains at the end."""


def launch(kind: RunKind[RequestT, PlanT], request: RequestT) -> RunRecord:
    """Plan, check, record and execute a run of ``kind``; returns its record."""
    plan = kind.plan(request)
    identity = kind.identity(plan)
    digest = identity_digest(identity)
    out = check_output(request.out, kind.inputs(plan)) if request.out is not None else None
    claim = "new"
    if out is not None:
        claim = decide_output(
            out, resume=request.resume, overwrite=request.overwrite, record=kind.record_file
        )
    recorder = Recorder(out, kind.record_file)
    if claim == "resume":
        stored = RunRecord(recorder.data, recorder.path)
        if stored.identity:
            check_same_identity(
                {"identity": stored.identity}, {"identity": identity}, nested=("identity",)
            )
        if stored.status == "completed":
            return stored
    if claim == "overwrite" and out is not None:
        clear_owned(out, kind.owned, record=kind.record_file)
        recorder = Recorder(out, kind.record_file)
    recorder.start({"kind": kind.name, "identity": identity, "digest": digest})
    with recorder.failing():
        sections = kind.execute(plan, recorder)
    recorder.merge({**sections, "status": "completed", "finished_at": now()})
    return RunRecord(recorder.data, recorder.path)


__all__ = ["OutputOptions", "RunKind", "launch"]
