"""The linear-probe attack (Lynch et al. 2024): the logistic fit, the pipeline on planted features, and a run on tiny."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from obliviate.attacks import linear_probe as lp
from obliviate.attacks.base import AttackContext, resolve_attack
from obliviate.errors import ConfigError


def test_fit_logistic_reaches_the_regularised_optimum():
    """At the returned (w, b) the gradient of the stated objective vanishes (computed here by hand)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64) + 2.0
    y = (x[:, 0] + 0.3 * torch.randn(40, generator=g, dtype=torch.float64) > 2.2).double()
    l2 = 0.1
    w, b, mu, sd = lp.fit_logistic(x, y, l2)
    assert torch.allclose(mu, x.mean(0)) and torch.allclose(sd, x.std(0, unbiased=False))
    z = (x - mu) / sd
    pos, n = float(y.sum()), len(y)
    c = torch.where(y > 0, n / (2 * pos), n / (2 * (n - pos)))
    p = torch.sigmoid(z @ w + b)
    grad_w = (c * (p - y)) @ z / n + l2 * w
    grad_b = (c * (p - y)).sum() / n
    assert grad_w.abs().max() < 1e-6 and abs(float(grad_b)) < 1e-6
    assert float(w[0]) > 0.5 and abs(float(w[0])) > 3 * abs(float(w[1]))  # the informative feature carries it
    with pytest.raises(ValueError):
        lp.fit_logistic(x, torch.ones(40, dtype=torch.float64), l2)


def test_ranking_accuracy_counts_ties_half():
    scores = torch.tensor([2.0, 1.0, 2.0, 3.0, 0.0, 0.0, -1.0])
    assert lp.ranking_accuracy(scores, [(0, [1, 2, 3]), (4, [5, 6])]) == [pytest.approx(0.5), pytest.approx(0.75)]


def planted(task, dim: int, signal_layer: int, forget_signal: bool):
    """Fake hidden states: noise everywhere, plus +3 on feature 0 of true statements at one layer.

    The forget statements carry the planted truth direction only if ``forget_signal``: a model
    that still represents the facts, against one that never knew them.
    """

    def fake(model, formatter, statements, **_):
        g = torch.Generator().manual_seed(len(statements))
        feats = torch.randn(4, len(statements), dim, generator=g)
        truth = {(q.question, q.paraphrased_answer or q.answer) for q in task.retain}
        if forget_signal:
            truth |= {(q.question, q.paraphrased_answer or q.answer) for q in task.forget}
        for i, s in enumerate(statements):
            if s in truth:
                feats[signal_layer, i, 0] += 3.0
        return feats

    return fake


@pytest.mark.parametrize("forget_signal", [True, False])
def test_probe_finds_the_planted_layer_and_reads_forget_facts_only_if_present(tiny, task, monkeypatch, forget_signal):
    monkeypatch.setattr(lp, "hidden_features", planted(task, 6, 2, forget_signal))
    out = resolve_attack("linear_probe", {}).apply(AttackContext(model=tiny, task=task))
    entry = out.results[lp.RESULT_KEY]
    assert entry["extra"]["layer"] == 2  # chosen on held-out retain items
    assert entry["extra"]["heldout_retain_acc"][2] > 0.9
    n = len(entry["values"])
    # chance: each item's 3 ranks are a fair coin-ish draw; the mean of n items has sd <= 0.5/sqrt(n)
    if forget_signal:
        assert entry["aggregate"] > 0.9
    else:
        assert abs(entry["aggregate"] - 0.5) < 4 * 0.5 / math.sqrt(n)


def test_probe_runs_on_tiny_and_leaves_the_model(tiny, task):
    small = dataclasses.replace(task, forget=list(task.forget)[:5] + [dataclasses.replace(task.forget[5], perturbed_answers=())])
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    mode = tiny.model.training
    attack = resolve_attack("linear_probe", {"train_items": 24})
    attack.check(small)
    out = attack.apply(AttackContext(model=tiny, task=small))
    assert all(torch.equal(v, before[k]) for k, v in tiny.model.state_dict().items()) and tiny.model.training == mode
    entry = out.results[lp.RESULT_KEY]
    assert entry["item_ids"] == [q.id for q in small.forget[:5]]
    assert entry["extra"]["skipped"] == [small.forget[5].id]
    assert all(0.0 <= v <= 1.0 for v in entry["values"]) and entry["direction"] == "lower"
    n = tiny.model.config.num_hidden_layers + 1
    assert entry["extra"]["layers"] == list(range(n)) and len(entry["extra"]["heldout_retain_acc"]) == n
    assert out.details["fit_items"] + out.details["heldout_items"] == 24
    assert out.details["statements"]["forget"] == 5 * 4


def test_linear_probe_options_and_tasks_fail_early(task):
    for bad in ({"train_items": 2}, {"heldout": 1.0}, {"l2": -1}, {"pool": "max"}, {"layers": "x"}, {"batch_size": 0}):
        with pytest.raises(ConfigError):
            resolve_attack("linear_probe", bad)
    attack = resolve_attack("linear_probe", {})
    no_wrong = dataclasses.replace(task, forget=[dataclasses.replace(q, perturbed_answers=()) for q in task.forget])
    with pytest.raises(ConfigError, match="perturbed"):
        attack.check(no_wrong)
    few_retain = dataclasses.replace(task, retain=list(task.retain)[:3])
    with pytest.raises(ConfigError, match="at least 4"):
        attack.check(few_retain)
