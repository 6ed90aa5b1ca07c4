"""Fidelity: every registered metric, as obliviate computes it in fp32, against an independent reference.

The reference (tests/unit/fidelity_reference.py) recomputes every metric one sequence at a time
from the official definitions, without obliviate's scoring, metrics or formatting code. Here both
tiny models of tests/conftest.py (the target, trained on forget + retain, and the retain-only
model) are evaluated once by obliviate on the fictional task, extended with a KnowMem split and two
multiple-choice splits so that every metric of ``METRICS`` has real values; each parametrised case
then compares one metric's entries of both runs with the reference.

Tolerances. Per-item values must agree within 1e-5 and aggregates within 1e-6, both as
``|got - want| <= tol * max(1, |want|)``: absolute for values of magnitude up to 1 (probabilities,
ROUGE, AUROC, p-values, memorization shares: an fp32 forward computed two ways, batched and padded
vs one sequence, differs by ~1e-7 in a log-probability), relative for larger ones (privleak is a
percentage up to +-100, fluency is in bits, gradient norms and Min-K%++ z-scores can be in the
tens or more), where fp32's ~6e-8 relative precision, not an absolute floor, bounds the error.
Greedy generations must be identical strings.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from fidelity_reference import (
    NeedsReference,
    Reference,
    RefModel,
    compare_entry,
    compare_generations,
)

from obliviate.benchmarks.spec import benchmark_spec
from obliviate.data.readers import read_records
from obliviate.data.records import MCQ, Text
from obliviate.evaluation import run_metrics
from obliviate.metrics import METRICS
from obliviate.metrics.base import EvalOptions
from obliviate.models.io import LoadedModel
from obliviate.record import Results

FIX = Path(__file__).resolve().parents[1] / "fixtures"

OPTIONS = EvalOptions(
    max_new_tokens=24,
    verbmem_max_new_tokens=8,  # shorter than most answers: the reference continuation is cut
    knowmem_max_new_tokens=16,
    knowmem_shots=3,
    gradnorm_items=8,
    max_items=20,
    prompt_format="plain",
    end_token="drop",
    precision="fp32",
)

ATTACKS = ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_pp", "mia_reference", "mia_gradnorm")
EXTRA_KEYS = (
    "knowmem_forget/knowmem", "mcq/mcq_accuracy", "mcq_forget/mcq_accuracy", "retain/fluency",
    "verbmem_forget/verbmem", *(f"text_forget/{a}" for a in ATTACKS),
)
BLEND_KEYS = ("forget_quality", "privleak", "forget/mia_reference", "text_forget/mia_reference")
# The tiny tokenizer adds no BOS; a copy that adds one checks the other tokenization branch (every
# text token a label, the BOS taking one of VerbMem's reference places), as under Llama tokenizers.
BOS_KEYS = (
    "forget/prob", "forget/truth_ratio", "forget/rouge", "forget/fluency", "forget/exact_memorization",
    "forget/extraction_strength", "privleak", "verbmem_forget/verbmem", "knowmem_forget/knowmem",
    "mcq/mcq_accuracy", *(f"text_forget/{a}" for a in ATTACKS if a != "mia_reference"),
)
GENERATING = ("rouge", "fluency", "verbmem", "knowmem")


def fidelity_task(base: Any) -> Any:
    """The conftest fictional task, extended so that every metric sees values the models can get right.

    - real_authors / world_facts start with 10 retain QA each (known to both models), so their
      ROUGE is not 0 and model utility's harmonic mean is not trivially 0;
    - knowmem_forget (forget QA), verbmem_forget (forget QA as raw prompt + continuation);
    - text_forget / text_holdout: forget / holdout QA as raw text, for the attacks on Text records
      (forget_bio has 2 texts only);
    - mcq (tests/fixtures/mcq.jsonl) and mcq_forget (forget QA with their perturbed answers).
    """
    forget, holdout, retain = list(base.forget), list(base.holdout), list(base.retain)

    def as_text(q: Any, prefix: str) -> Text:
        return Text(f"Question: {q.question}\nAnswer: {q.answer}", id=f"{prefix}-{q.id}")

    mcq_forget = []
    for i, q in enumerate(forget):  # the true answer at a rotating position
        wrong = list(q.perturbed_answers)
        at = i % (len(wrong) + 1)
        mcq_forget.append(MCQ(q.question, tuple(wrong[:at] + [q.answer] + wrong[at:]), at, id=f"mcq-{q.id}"))
    splits = {
        **base.splits,
        "real_authors": [dataclasses.replace(q, id=f"ra-{q.id}") for q in retain[-10:]] + list(base.splits["real_authors"]),
        "world_facts": [dataclasses.replace(q, id=f"wf-{q.id}") for q in retain[-20:-10]] + list(base.splits["world_facts"]),
        "verbmem_forget": [
            Text(f"Question: {q.question}\nAnswer: {q.answer}", id=f"vm-{q.id}",
                 prompt=f"Question: {q.question}\nAnswer:", continuation=f" {q.answer}")
            for q in forget
        ],
        "text_forget": [as_text(q, "tf") for q in forget],
        "text_holdout": [as_text(q, "th") for q in holdout],
        "knowmem_forget": forget,
        "mcq": read_records(FIX / "mcq.jsonl", "mcq"),
        "mcq_forget": mcq_forget,
    }
    return dataclasses.replace(base, splits=splits)


def loaded(trained: Any) -> LoadedModel:
    return LoadedModel(trained.model(), trained.tokenizer, "tiny", None)


@dataclasses.dataclass
class Fidelity:
    task: Any
    runs: dict[str, Results]  # "target", "retain", "blend": obliviate's results
    refs: dict[str, Reference]  # the same for the reference implementation


@pytest.fixture(scope="module")
def fidelity(tiny_trained: Any, tiny_retain_trained: Any) -> Fidelity:
    task = fidelity_task(tiny_trained.task)
    keys = list(benchmark_spec("fictional").plan) + list(EXTRA_KEYS)
    retain = run_metrics(loaded(tiny_retain_trained), task, plan=keys, options=OPTIONS)
    target = run_metrics(loaded(tiny_trained), task, plan=keys, reference=retain.data, options=OPTIONS)
    assert target.skipped == {}, target.skipped
    # Halfway between the two models: forget quality, privleak and the reference attack away from
    # their extremes (the target's forget AUC is 1, so its privleak is -100 whatever the reference).
    blend = blended(tiny_trained, tiny_retain_trained)
    mid = run_metrics(blend, task, plan=list(BLEND_KEYS), reference=retain.data, options=OPTIONS)
    bos_tok = with_bos(tiny_trained.tokenizer)
    bos = run_metrics(LoadedModel(tiny_trained.model(), bos_tok, "tiny", None), task, plan=list(BOS_KEYS), options=OPTIONS)
    # Fresh copies of the weights: the reference never shares a model object with obliviate.
    ref_retain = Reference(RefModel(tiny_retain_trained.model(), tiny_retain_trained.tokenizer), task, OPTIONS)
    ref_target = Reference(RefModel(tiny_trained.model(), tiny_trained.tokenizer), task, OPTIONS, ref_retain)
    ref_blend = Reference(RefModel(blended(tiny_trained, tiny_retain_trained).model, tiny_trained.tokenizer), task, OPTIONS, ref_retain)
    ref_bos = Reference(RefModel(tiny_trained.model(), bos_tok), task, OPTIONS)
    return Fidelity(
        task,
        {"target": target, "retain": retain, "blend": mid, "bos": bos},
        {"target": ref_target, "retain": ref_retain, "blend": ref_blend, "bos": ref_bos},
    )


def with_bos(tokenizer: Any) -> Any:
    """A copy of a fast tokenizer that puts its BOS token before every text it encodes."""
    from tokenizers.processors import TemplateProcessing

    tok = copy.deepcopy(tokenizer)
    bos = tok.bos_token
    tok._tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.bos_token_id)]
    )
    assert tok("x")["input_ids"][0] == tok.bos_token_id != tok("x", add_special_tokens=False)["input_ids"][0]
    return tok


def blended(a: Any, b: Any) -> LoadedModel:
    """A model whose weights are the mean of two trained tiny models' weights."""
    model = a.model()
    model.load_state_dict({k: (v + b.state[k]) / 2 if v.is_floating_point() else v for k, v in a.state.items()})
    return LoadedModel(model.eval(), a.tokenizer, "tiny", None)


def mismatches(run: Results, ref: Reference, key: str) -> list[str]:
    """Every difference of one key (its entry and, for generating metrics, its generations)."""
    problems = compare_entry(key, run.metrics.get(key), ref.entry(key))
    split, _, name = key.rpartition("/")
    if name in GENERATING:
        problems += compare_generations(split, run.generations(split), ref.generations.get(split, {}))
    return problems


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_matches_the_reference(name: str, fidelity: Fidelity) -> None:
    keys = [k for k in fidelity.runs["target"].metrics if k.rpartition("/")[2] == name]
    assert keys, f"metric {name!r} was not evaluated: add a split/plan entry for it to test_fidelity"
    problems: list[str] = []
    compared = 0
    for which in ("target", "retain", "blend", "bos"):
        run, ref = fidelity.runs[which], fidelity.refs[which]
        for key in keys:
            if which in ("blend", "bos") and key not in run.metrics:
                continue  # these runs evaluate a few metrics only
            if key not in run.metrics:
                assert which == "retain" and key in run.skipped, f"{which}: {key} missing ({run.skipped.get(key)})"
                continue  # the retain run has no reference of its own
            try:
                problems += [f"[{which}] {p}" for p in mismatches(run, ref, key)]
            except NeedsReference:
                # obliviate computed a reference metric without a reference: only privleak may
                # (with open-unlearning's 0.5 default), and the reference implements that.
                problems.append(f"[{which}] {key}: computed without a reference model")
            compared += 1
    print(f"\n{name}: {compared} entries compared ({', '.join(keys)}), {len(problems)} problems")
    assert not problems, "\n".join(problems)


def test_the_comparison_catches_a_small_perturbation(
    tiny_trained: Any, fidelity: Fidelity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shift exact memorization by 1e-3 in obliviate's formula: the comparison must report it."""
    import obliviate.metrics.functional as F

    key = "forget/exact_memorization"
    small = dataclasses.replace(OPTIONS, max_items=5)
    model = loaded(tiny_trained)
    clean = run_metrics(model, fidelity.task, metrics=[key], options=small)
    original = F.exact_memorization
    monkeypatch.setattr(F, "exact_memorization", lambda pred, labels: original(pred, labels) + 1e-3)
    shifted = run_metrics(model, fidelity.task, metrics=[key], options=small)
    monkeypatch.undo()
    ref = Reference(RefModel(tiny_trained.model(), tiny_trained.tokenizer), fidelity.task, small)
    assert compare_entry(key, clean.metrics[key], clean.metrics[key]) == []
    against_clean = compare_entry(key, shifted.metrics[key], clean.metrics[key])
    against_ref = compare_entry(key, shifted.metrics[key], ref.entry(key))
    print("\n" + "\n".join(against_ref))
    for found in (against_clean, against_ref):
        assert any("aggregate" in p for p in found), found
        assert any("5/5 per-item values differ" in p for p in found), found
