"""Runs as library objects: plan an unlearning run, carry it out, record it; evaluate a model.

The command line and the Python API share this module, so they validate the same way and write
the same ``RUN/model`` and ``RUN/run.json``::

    plan = plan_unlearn("prep/target", "prep/benchmark", "npo", {"train": {"lr": 1e-4}}, out="runs/npo")
    run = run_unlearn(plan)          # the unlearned model is run.model (also saved in runs/npo/model)
    res = evaluate(run.model, "prep/benchmark", reference="runs/retain", out="runs/npo")

:func:`plan_unlearn` checks every option (method, train, lora, stop, benchmark, prompt format), the
model spec, the benchmark and the output before any model loads. The method's ``train_defaults``
fill the training options the caller left unset. :func:`run_unlearn` never trains the caller's
model object unless ``in_place`` is set, uses the prompt format the model records, resumes only
with the options the interrupted run recorded, and keeps the last good weights of a run that
diverged (its status is then ``diverged``).
"""

from obliviate.runs.evaluate_run import evaluate
from obliviate.runs.plan import (
    UnlearnOptions,
    UnlearnPlan,
    load_task,
    plan_unlearn,
    resolve_options,
)
from obliviate.runs.unlearn import EXIT_DIVERGED, Run, run_unlearn, summary_lines

__all__ = [
    "EXIT_DIVERGED", "Run", "UnlearnOptions", "UnlearnPlan", "evaluate", "load_task", "plan_unlearn",
    "resolve_options", "run_unlearn", "summary_lines",
]
