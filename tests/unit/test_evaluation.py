"""The evaluation suite on the tiny model: shared forward passes, resume, results, the CLI.

A module fixture fine-tunes two tiny Llamas once: the *target* on forget + retain QA and the
*retain* model on retain QA only (the retain-only oracle), on a small fictional task (40 people:
4 forget and 4 holdout people with 10 QA each, and only the first 20 retain QA, to train fast). Every figure the assertions rely on is printed
(``pytest -s``) so the report can quote it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from obliviate.benchmarks.fictional import build_fictional
from obliviate.benchmarks.spec import benchmark_spec
from obliviate.data.formatting import PromptFormatter, collate, encode_qa
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError, DataError
from obliviate.evaluation import plan_metrics, run_metrics
from obliviate.metrics import METRICS
from obliviate.metrics.base import EvalContext, EvalOptions
from obliviate.models.io import LoadedModel, load_model
from obliviate.record import Results, read_run
from obliviate.record.store import merge_metrics, save_run
from obliviate.scoring import CachedScorer, ModelScorer, ScoreRequest, TokenScores
from obliviate.training.loop import LossOutput, TrainConfig, train

OPTIONS = EvalOptions(max_new_tokens=24, verbmem_max_new_tokens=32, gradnorm_items=10)
TRAIN = TrainConfig(lr=5e-3, epochs=30, batch_size=10, warmup=0.05, weight_decay=0.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The tiny model's matrices are too small to gain from a second thread; on a shared 2-core
    machine one thread runs its training steps 1.5-2.5x faster (measured), so use one here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task() -> UnlearningTask:
    full = build_fictional(n_people=40, n_world=5)  # 4 forget, 4 holdout, 32 retain people
    return dataclasses.replace(full, retain=full.retain[:20])


def sft_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> LossOutput:
    """Mean cross-entropy over the answer tokens (labels are -100 elsewhere)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    return LossOutput(torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1)))


def fine_tune(records: Sequence) -> LoadedModel:
    loaded = load_model("tiny")
    fmt = PromptFormatter(loaded.tokenizer)
    items = [encode_qa(fmt, q.question, q.answer) for q in records]
    pad = loaded.tokenizer.pad_token_id
    result = train(loaded.model, sft_loss, items, lambda b: collate(b, pad), TRAIN, progress=False)
    print(f"\nfine-tuned on {len(records)} QA: {result.steps} steps, {result.seconds:.1f} s, last loss {result.log[-1]['loss']:.3f}")
    return loaded


@pytest.fixture(scope="module")
def models(task: UnlearningTask) -> dict[str, LoadedModel]:
    return {"target": fine_tune(task.forget + task.retain), "retain": fine_tune(task.retain)}


@pytest.fixture(scope="module")
def retain_run(models: dict[str, LoadedModel], task: UnlearningTask, tmp_path_factory: pytest.TempPathFactory) -> Results:
    out = tmp_path_factory.mktemp("retain")
    return run_metrics(models["retain"], task, out=out, options=OPTIONS)


class Spy(ModelScorer):
    """A ModelScorer that records every request and prompt it is asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.score_calls: list[list[ScoreRequest]] = []
        self.gen_calls: list[tuple[list[str], int, tuple[str, ...]]] = []

    def score(self, requests: Sequence[ScoreRequest], *, vocab_stats: bool = False) -> list[TokenScores]:
        self.score_calls.append(list(requests))
        return super().score(requests, vocab_stats=vocab_stats)

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 64, stop: Sequence[str] = ()) -> list[str]:
        self.gen_calls.append((list(prompts), max_new_tokens, tuple(stop)))
        return super().generate(prompts, max_new_tokens=max_new_tokens, stop=stop)


@pytest.fixture(scope="module")
def target_eval(
    models: dict[str, LoadedModel], task: UnlearningTask, retain_run: Results, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Spy, Results]:
    loaded = models["target"]
    spy = Spy(loaded.model, loaded.tokenizer, PromptFormatter(loaded.tokenizer), batch_size=OPTIONS.batch_size)
    out = tmp_path_factory.mktemp("target")
    results = run_metrics(spy, task, reference=retain_run.path, out=out, options=OPTIONS, model=loaded.model)
    return spy, results


def test_full_fictional_plan_scores_each_pair_exactly_once(
    target_eval: tuple[Spy, Results], task: UnlearningTask, retain_run: Results
) -> None:
    spy, results = target_eval
    assert results.skipped == {}
    assert set(benchmark_spec("fictional").plan) <= set(results.metrics)
    # One scoring call holding every distinct pair that any metric asks for, each once.
    assert len(spy.score_calls) == 1
    sent = spy.score_calls[0]
    assert len(sent) == len(set(sent)) == spy.n_scored
    ctx = EvalContext(task, CachedScorer(spy), OPTIONS, retain_run.data)
    wanted = {r for m in plan_metrics(task, "fictional", None, retain_run.data).metrics for r in m.requests(ctx)}
    assert set(sent) == wanted
    # One generation call per (max_new_tokens, stop) group, each prompt once.
    groups = [(n, stop) for _, n, stop in spy.gen_calls]
    assert len(groups) == len(set(groups)) == 2
    assert all(len(p) == len(set(p)) for p, _, _ in spy.gen_calls)
    assert spy.n_generated == sum(len(p) for p, _, _ in spy.gen_calls)
    print(f"\nfull fictional plan: {len(results.metrics)} metrics, {spy.n_scored} pairs scored once, "
          f"{spy.n_generated} generations, timings {results.data['eval']['seconds']}")


def permutation_p(entry: dict, n_permutations: int = 20000, seed: int = 0) -> float:
    """Two-sided permutation p-value of an attack's AUC: how often a random split of the same scores
    into members and non-members is at least as far from 0.5. Derived from the run's own per-item
    scores, so the bound holds on any machine's kernels (no fixed margin)."""
    import numpy as np
    from scipy.stats import rankdata

    scores = np.asarray(entry["values"], dtype=float)
    n1 = int(entry["extra"]["n_members"])
    n2 = len(scores) - n1
    ranks = rankdata(scores)

    def auc(idx: np.ndarray) -> float:
        return (ranks[idx].sum() - n1 * (n1 + 1) / 2) / (n1 * n2)

    observed = abs(auc(np.arange(n1)) - 0.5)
    rng = np.random.default_rng(seed)
    null = np.array([abs(auc(rng.permutation(len(scores))[:n1]) - 0.5) for _ in range(n_permutations)])
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations))


ALPHA = 0.001
"""Level of the permutation tests: per attack, a retain-only model is wrongly told apart (or a target
wrongly not) with probability at most 0.001, so five attacks fail a correct build at most 0.5 % of runs."""


def test_target_is_told_apart_from_the_retain_model(
    target_eval: tuple[Spy, Results], retain_run: Results, task: UnlearningTask
) -> None:
    _, target = target_eval
    fq = target.aggregate("forget_quality")
    print(f"\nforget quality of the target vs the retain model: {fq:.3g}")
    assert fq < 0.05
    for attack in ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_pp", "mia_reference", "mia_gradnorm"):
        key = f"forget/{attack}"
        t, p_t = target.aggregate(key), permutation_p(target.entry(key))
        print(f"forget vs holdout AUC, {attack:13s}: target {t:.3f} (p {p_t:.4f})", end="")
        assert t > 0.5 and p_t < ALPHA  # the target's members are told apart from never-seen items
        if attack != "mia_reference":  # the retain-only run has no reference of its own
            r, p_r = retain_run.aggregate(key), permutation_p(retain_run.entry(key))
            print(f"  retain {r:.3f} (p {p_r:.4f})", end="")
            assert p_r > ALPHA  # the retain-only model cannot tell forget items from holdout items
        print()
    print(f"privleak of the target: {target.aggregate('privleak'):.1f} (retain-model AUC as reference)")
    assert target.aggregate("privleak") < -50
    print(f"forget Prob: target {target.aggregate('forget/prob'):.3f}, retain {retain_run.aggregate('forget/prob'):.4f}")
    assert target.aggregate("forget/prob") > 10 * retain_run.aggregate("forget/prob")
    assert set(target.generations("forget")) == {q.id for q in task.forget}  # shown side by side in the report


def test_the_permutation_test_tells_a_difference_from_noise() -> None:
    """The bound itself: separated scores give p < ALPHA; exchangeable ones do not (the test can fail)."""
    import numpy as np

    rng = np.random.default_rng(1)
    apart = {"values": [*(rng.normal(2, 1, 20)), *(rng.normal(0, 1, 20))], "extra": {"n_members": 20}}
    alike = {"values": list(rng.normal(0, 1, 40)), "extra": {"n_members": 20}}
    assert permutation_p(apart) < ALPHA < permutation_p(alike)


def test_retain_model_against_itself_has_forget_quality_one(
    models: dict[str, LoadedModel], task: UnlearningTask, retain_run: Results
) -> None:
    res = run_metrics(models["retain"], task, metrics=["forget_quality"], reference=retain_run.path, options=OPTIONS)
    assert res.aggregate("forget_quality") == pytest.approx(1.0)  # KS of a sample against itself
    assert list(res.metrics) == ["forget/truth_ratio", "forget_quality"]  # the dependency came along


def test_batched_generation_equals_one_at_a_time(models: dict[str, LoadedModel], task: UnlearningTask) -> None:
    loaded = models["target"]
    scorer = ModelScorer(loaded.model, loaded.tokenizer, batch_size=8)
    fmt = scorer.formatter
    prompts = [fmt.prompt(q.question) for q in task.forget[:6] + task.holdout[:2]]
    batched = scorer.generate(prompts, max_new_tokens=16)
    single = [scorer.generate([p], max_new_tokens=16)[0] for p in prompts]
    print(f"\nbatched vs one at a time, first answer: {batched[0]!r} (true: {task.forget[0].answer!r})")
    assert batched == single
    assert all(batched)


def score_counting(module: Any, scorers: Sequence[ModelScorer], requests: list[ScoreRequest]) -> list[tuple[list, int]]:
    """Each scorer's scores of ``requests`` (with vocabulary statistics) and the token positions
    ``module`` ran on meanwhile (counted by a forward pre-hook)."""
    seen = {"n": 0}

    def count(mod: Any, args: Any, kwargs: dict[str, Any]) -> None:
        x = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        seen["n"] += x.shape[0] * x.shape[1]

    handle = module.register_forward_pre_hook(count, with_kwargs=True)
    out = []
    try:
        for scorer in scorers:
            seen["n"] = 0
            out.append((scorer.score(requests, vocab_stats=True), seen["n"]))
    finally:
        handle.remove()
    return out


def test_shared_prompts_score_as_whole_sequences(models: dict[str, LoadedModel], task: UnlearningTask) -> None:
    """A prompt run once, with each answer on its key/value cache, scores as the whole sequences do."""
    loaded = models["target"]
    whole = ModelScorer(loaded.model, loaded.tokenizer, batch_size=4, bf16=False, share_prompts=False)
    shared = ModelScorer(loaded.model, loaded.tokenizer, batch_size=4, bf16=False)
    fmt = whole.formatter
    requests = [
        ScoreRequest(fmt.prompt(q.question), fmt.answer(a))
        for q in task.forget[:5] + task.holdout[:2]
        for a in (q.answer, q.paraphrased_answer, *q.perturbed_answers)
    ]
    # Requests with a prompt of their own and raw text take the whole-sequence path in both.
    requests += [whole.qa_request(task.retain[0].question, task.retain[0].answer), whole.text_request(task.retain[1].answer)]
    (a, whole_tokens), (b, shared_tokens) = score_counting(loaded.model, [whole, shared], requests)
    assert shared._can_share()
    print(f"\nshared prompts: {shared_tokens} tokens run instead of {whole_tokens}")
    assert shared_tokens < 0.8 * whole_tokens
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(y.token_ids, x.token_ids)
        np.testing.assert_allclose(y.logprobs, x.logprobs, atol=1e-4)
        np.testing.assert_array_equal(y.argmax_ids, x.argmax_ids)
        np.testing.assert_allclose(y.mean, x.mean, atol=1e-4)
        np.testing.assert_allclose(y.var, x.var, atol=1e-3)


def test_a_model_whose_cache_cannot_be_shared_is_scored_whole(
    models: dict[str, LoadedModel], task: UnlearningTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = models["target"]
    whole = ModelScorer(loaded.model, loaded.tokenizer, bf16=False, share_prompts=False)
    shared = ModelScorer(loaded.model, loaded.tokenizer, bf16=False)
    q = task.forget[0]
    requests = [whole.qa_request(q.question, a) for a in (q.answer, *q.perturbed_answers)]

    def unsupported(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("this cache cannot be copied")

    monkeypatch.setattr(shared, "_score_shared", unsupported)
    got = shared.score(requests)
    assert not shared.share_prompts  # not tried again
    for x, y in zip(whole.score(requests), got, strict=True):
        np.testing.assert_allclose(y.logprobs, x.logprobs, atol=1e-6)


def test_weights_cast_once_score_and_generate_as_autocast_does(
    models: dict[str, LoadedModel], task: UnlearningTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linear weights cast to bf16 once per call give autocast's own numbers, and are put back."""
    from obliviate.models.precision import bf16_autocast

    loaded = models["target"]
    model = loaded.model
    before = {n: p for n, p in model.named_parameters()}
    fast = ModelScorer(model, loaded.tokenizer, batch_size=4, bf16=True)
    plain = ModelScorer(model, loaded.tokenizer, batch_size=4, bf16=True)
    monkeypatch.setattr(plain, "_autocast", lambda: bf16_autocast(plain.device, True))
    fmt = fast.formatter
    requests = [ScoreRequest(fmt.prompt(q.question), fmt.answer(a)) for q in task.forget[:4] for a in (q.answer, *q.perturbed_answers)]
    requests.append(fast.text_request(task.retain[1].answer))
    for x, y in zip(plain.score(requests, vocab_stats=True), fast.score(requests, vocab_stats=True), strict=True):
        np.testing.assert_array_equal(y.logprobs, x.logprobs)  # the same bf16 operands into the same kernels
        np.testing.assert_array_equal(y.mean, x.mean)
        np.testing.assert_array_equal(y.var, x.var)
    prompts = [fmt.prompt(q.question) for q in task.forget[:4]]
    assert fast.generate(prompts, max_new_tokens=12) == plain.generate(prompts, max_new_tokens=12)
    after = {n: p for n, p in model.named_parameters()}
    assert after.keys() == before.keys() and all(after[n] is before[n] for n in before)
    assert all(p.dtype == torch.float32 for p in after.values())
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # still tied


def test_output_head_on_answer_positions_only_scores_as_every_position(
    models: dict[str, LoadedModel], task: UnlearningTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = models["target"]
    few = ModelScorer(loaded.model, loaded.tokenizer, batch_size=4, bf16=False, share_prompts=False)
    every = ModelScorer(loaded.model, loaded.tokenizer, batch_size=4, bf16=False, share_prompts=False)
    monkeypatch.setattr(every, "_keeps_logits", lambda: False)
    requests = [every.qa_request(q.question, q.answer) for q in task.forget[:6]] + [every.text_request(task.retain[0].answer)]
    (a, rows_every), (b, rows_few) = score_counting(loaded.model.get_output_embeddings(), [every, few], requests)
    assert rows_few < 0.8 * rows_every
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(y.token_ids, x.token_ids)
        np.testing.assert_allclose(y.logprobs, x.logprobs, atol=1e-5)
        np.testing.assert_allclose(y.mean, x.mean, atol=1e-5)


def test_resume_skips_metrics_already_in_the_run(
    models: dict[str, LoadedModel], task: UnlearningTask, tmp_path: Path
) -> None:
    loaded = models["retain"]
    opts = dataclasses.replace(OPTIONS, max_items=5)
    first = Spy(loaded.model, loaded.tokenizer)
    run_metrics(first, task, out=tmp_path, metrics=["forget/prob"], options=opts)
    assert first.n_scored == 5
    data = read_run(tmp_path)
    data["config"] = {"kept": True}  # another writer's key survives the merge
    save_run(tmp_path, data)
    second = Spy(loaded.model, loaded.tokenizer)
    res = run_metrics(second, task, out=tmp_path, metrics=["forget/prob", "forget/rouge"], options=opts)
    assert second.n_scored == 0 and second.n_generated == 5  # prob was not recomputed
    assert list(res.metrics) == ["forget/prob", "forget/rouge"]
    assert read_run(tmp_path)["config"] == {"kept": True}
    third = Spy(loaded.model, loaded.tokenizer)
    run_metrics(third, task, out=tmp_path, metrics=["forget/prob"], options=opts, overwrite=True)
    assert third.n_scored == 5
    assert list(read_run(tmp_path)["metrics"]) == ["forget/prob"]  # overwrite dropped the old results


def test_run_json_is_strict_and_written_atomically(tmp_path: Path) -> None:
    data = merge_metrics({"config": {"a": 1}}, {"forget/prob": {"aggregate": float("nan"), "values": [math.inf, 0.5]}},
                         {"forget": {"q1": "text"}}, {"forget_quality": "needs --reference"})
    path = save_run(tmp_path, data)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    stored = json.loads(text)
    assert stored["metrics"]["forget/prob"] == {"aggregate": None, "values": [None, 0.5]}
    assert stored["generations"] == {"forget": {"q1": "text"}} and stored["config"] == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    again = merge_metrics(stored, {"forget_quality": {"aggregate": 0.5}})
    assert again["skipped"] == {}  # computed now, so no longer skipped


def test_plan_fails_fast_on_bad_input(task: UnlearningTask, retain_run: Results) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'rouge'"):
        plan_metrics(task, metrics=["rouje"])
    with pytest.raises(ConfigError, match="forget_quality cannot run: needs the retain-only"):
        plan_metrics(task, metrics=["forget_quality"])
    with pytest.raises(ConfigError, match="no per-item 'forget/truth_ratio' values"):
        plan_metrics(task, reference={"metrics": {"forget/prob": {"aggregate": 0.1}}})
    with pytest.raises(DataError, match="has no split 'forgot'"):
        plan_metrics(task, metrics=["forgot/rouge"])
    other = {**retain_run.data, "eval": {**retain_run.data["eval"], "benchmark": "tofu@1/forget10"}}
    with pytest.raises(ConfigError, match="same prepared benchmark"):
        plan_metrics(task, reference=other)
    plan = plan_metrics(task, plan="muse")
    assert plan.skipped["verbmem_forget/verbmem"].startswith("the task has no 'verbmem_forget' split")


def test_select_by_name_skips_the_splits_the_task_lacks(task: UnlearningTask) -> None:
    """``--plan tofu --metrics rouge`` skips retain_perturbed as the plan alone does; a full key of
    a missing split, or a name that no split of the plan can run, is still an error."""
    whole = plan_metrics(task, plan="tofu")
    chosen = plan_metrics(task, plan="tofu", metrics=["rouge"])
    rouge = [f"{s}/rouge" for s in ("forget", "retain_perturbed", "real_authors", "world_facts")]
    assert [m.key for m in chosen.metrics] == rouge
    assert chosen.skipped == {k: v for k, v in whole.skipped.items() if k in rouge}
    missing = chosen.skipped["retain_perturbed/rouge"]
    assert missing.startswith("the task has no 'retain_perturbed' split")
    assert "forget/rouge" not in chosen.skipped
    with pytest.raises(DataError, match="has no split 'retain_perturbed'"):
        plan_metrics(task, plan="tofu", metrics=["retain_perturbed/rouge"])
    with pytest.raises(DataError, match="has no split 'nosplit'"):
        plan_metrics(task, plan="tofu", metrics=["rouge", "nosplit/rouge"])
    with pytest.raises(ConfigError, match=r"mia_reference cannot run on any split of this plan "
                                          r"\(forget/mia_reference: "):
        plan_metrics(task, plan="tofu", metrics=["mia_reference"])
    with pytest.raises(ConfigError, match="forget_quality cannot run: needs the retain-only"):
        plan_metrics(task, plan="tofu", metrics=["rouge", "forget_quality"])


def cli_args(**kw: str | None) -> argparse.Namespace:
    base = {"model": "tiny", "benchmark": "fictional", "out": "", "reference": None, "metrics": None,
            "plan": None, "overwrite": False}
    return argparse.Namespace(**{**base, **kw})


def test_cli_checks_everything_before_loading_the_model(
    task: UnlearningTask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from obliviate.cli import eval as cli

    def no_load(*a: object, **k: object) -> None:
        raise AssertionError("the model must not load before the input is checked")

    bench = task.save(tmp_path / "benchmark")
    monkeypatch.setattr("obliviate.models.io.load_model", no_load)
    with pytest.raises(ConfigError, match="Did you mean 'mia_min_k'"):
        cli.run(cli_args(benchmark=str(bench), out=str(tmp_path / "run"), metrics="mia_min_kk"), [])
    with pytest.raises(ConfigError, match="has no run.json"):
        cli.run(cli_args(benchmark=str(bench), out=str(tmp_path / "run"), reference=str(tmp_path)), [])
    with pytest.raises(ConfigError, match="does not exist"):
        cli.run(cli_args(benchmark=str(tmp_path / "nope"), out=str(tmp_path / "run")), [])
    with pytest.raises(ConfigError, match="unknown option 'eval.max_new_token'"):
        cli.run(cli_args(benchmark=str(bench), out=str(tmp_path / "run")), ["--eval.max_new_token", "8"])
    monkeypatch.undo()
    code = cli.run(cli_args(benchmark=str(bench), out=str(tmp_path / "run"), metrics="forget/prob,mia_loss"),
                   ["--eval.max_items", "4"])
    assert code == 0
    stored = read_run(tmp_path / "run")
    assert set(stored["metrics"]) == {"forget/prob", "forget/mia_loss", "forget_bio/mia_loss"}
    assert len(stored["metrics"]["forget/prob"]["values"]) == 4
    assert "forget/mia_loss" in capsys.readouterr().out


@pytest.mark.parametrize("name", METRICS.names())
def test_every_registered_metric_runs_on_the_tiny_model(
    name: str, models: dict[str, LoadedModel], task: UnlearningTask, retain_run: Results
) -> None:
    from obliviate.data.records import MCQ

    mcq = [MCQ(q.question, (q.answer, *q.perturbed_answers), 0, id=q.id) for q in task.forget[:4]]
    mixed = dataclasses.replace(task, splits={**task.splits, "knowmem_forget": task.forget[:6], "mcq": mcq})
    cls = METRICS.get(name)
    split = {"verbmem": "forget_bio", "mcq_accuracy": "mcq", "knowmem": "knowmem_forget"}.get(name, "forget")
    key = f"{split}/{name}" if cls.takes_split else name
    opts = dataclasses.replace(OPTIONS, max_items=4, max_new_tokens=8, knowmem_max_new_tokens=8)
    res = run_metrics(models["retain"], mixed, plan=[key], reference=retain_run.data, options=opts)
    assert key in res.metrics, res.skipped
    assert math.isfinite(res.aggregate(key))


def test_vocabulary_moments_only_for_the_requests_that_ask(models: dict[str, LoadedModel], task: UnlearningTask) -> None:
    """A set of requests gets the moments (those of vocab_stats=True, exactly); the others none, and
    everything else about every request is unchanged. The cache scores a request again once it asks."""
    loaded = models["target"]
    scorer = ModelScorer(loaded.model, loaded.tokenizer, batch_size=4, bf16=False)
    fmt = scorer.formatter
    requests = [ScoreRequest(fmt.prompt(q.question), fmt.answer(a)) for q in task.forget[:3] for a in (q.answer, *q.perturbed_answers)]
    requests += [scorer.text_request(r.answer) for r in task.retain[:3]]
    asked = {requests[0], requests[2], requests[-1]}
    every = scorer.score(requests, vocab_stats=True)
    some = scorer.score(requests, vocab_stats=asked)
    for r, x, y in zip(requests, every, some, strict=True):
        np.testing.assert_array_equal(y.logprobs, x.logprobs)
        np.testing.assert_array_equal(y.argmax_ids, x.argmax_ids)
        if r in asked:
            np.testing.assert_array_equal(y.mean, x.mean)
            np.testing.assert_array_equal(y.var, x.var)
        else:
            assert y.mean is None and y.var is None
    cached = CachedScorer(scorer)
    first = cached.score(requests, vocab_stats=asked)
    assert first[1].mean is None
    again = cached.score(requests[:2], vocab_stats={requests[1]})
    # scored alone, whole (not on its shared prompt's cache): the same up to float32 rounding
    np.testing.assert_allclose(again[1].mean, every[1].mean, rtol=1e-5, atol=1e-6)
    assert again[0] is first[0]  # already had its moments: not scored again
