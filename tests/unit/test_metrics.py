"""Hand-computed checks of every registered metric on a fake scorer with fixed log-probabilities.

The fake scorer returns, for each (prompt, answer) pair, log-probabilities written in the test, so
each expected number below is worked out by hand in a comment. Model-backed checks (training the
tiny model, counting forward passes) are in test_evaluation.py.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from obliviate.data.records import MCQ, QA, Text
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError
from obliviate.metrics import METRICS
from obliviate.metrics.base import EvalContext, EvalOptions, Metric, MetricResult, MetricSkipped
from obliviate.metrics.privacy import gradient_norms, nonmember_split
from obliviate.metrics.utility import mcq_prompt
from obliviate.scoring import Scorer, ScoreRequest, TokenScores

LN = math.log


class FakeTokenizer:
    """Whitespace tokenizer: each new word gets the next id (0 is the end token)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        inverse = {v: k for k, v in self.vocab.items()}
        return " ".join(inverse[i] for i in ids)


class FakeFormatter:
    """A plain prompt format over the fake tokenizer."""

    def __init__(self) -> None:
        self.tokenizer = FakeTokenizer()
        self.end_id = 0

    def prompt(self, question: str) -> str:
        return f"Q: {question}\nA:"

    def answer(self, answer: str) -> str:
        return " " + answer

    def prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt)["input_ids"]

    def answer_ids(self, answer: str) -> list[int]:
        return self.tokenizer(answer)["input_ids"]


class FakeScorer(Scorer):
    """Scores from a table keyed by answer text (default: one token of log-prob -1)."""

    def __init__(self, table: dict[str, TokenScores] | None = None, gens: dict[str, str] | None = None) -> None:
        self.formatter = FakeFormatter()  # type: ignore[assignment]
        self.table = table or {}
        self.gens = gens or {}
        self.scored: list[ScoreRequest] = []

    def score(self, requests: Sequence[ScoreRequest], *, vocab_stats: bool = False) -> list[TokenScores]:
        self.scored.extend(requests)
        default = ts([-1.0])
        return [self.table.get(r.answer.strip(), default) for r in requests]

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 64, stop: Sequence[str] = ()) -> list[str]:
        return [self.gens[p] for p in prompts]


def ts(logprobs: Sequence[float], tokens: Sequence[int] | None = None, argmax: Sequence[int] | None = None,
       mean: Sequence[float] | None = None, var: Sequence[float] | None = None) -> TokenScores:
    n = len(logprobs)
    tok = np.asarray(tokens if tokens is not None else range(n))
    return TokenScores(np.asarray(logprobs, dtype=float), tok, np.asarray(argmax if argmax is not None else tok),
                       None if mean is None else np.asarray(mean, float), None if var is None else np.asarray(var, float))


def qa(i: str, answer: str, para: str | None = None, pert: tuple[str, ...] = ()) -> QA:
    return QA(question=f"q{i}", answer=answer, paraphrased_answer=para, perturbed_answers=pert, id=i)


def make_task(**splits: list[Any]) -> UnlearningTask:
    core = {k: splits.pop(k, []) for k in ("forget", "retain", "holdout")}
    return UnlearningTask(name="fake@1", splits=splits, **core)


def run(key: str, task: UnlearningTask, scorer: FakeScorer, **kw: Any) -> tuple[Metric, MetricResult]:
    split, _, name = key.rpartition("/")
    metric = METRICS.get(name)(split or None)
    ctx = EvalContext(task, scorer, kw.pop("options", EvalOptions()), **kw)
    return metric, metric.compute(ctx)


# ------------------------------------------------------------------ TOFU -----------------------


def test_prob_length_normalised_and_direction() -> None:
    # item a: exp(mean(ln .5, ln .125)) = exp(ln .25) = .25 ; item b: exp(ln .9) = .9 ; mean .575
    scorer = FakeScorer({"A": ts([LN(0.5), LN(0.125)]), "B": ts([LN(0.9)])})
    task = make_task(forget=[qa("a", "A"), qa("b", "B")], retain=[qa("a", "A")])
    metric, res = run("forget/prob", task, scorer)
    assert res.values == pytest.approx([0.25, 0.9])
    assert res.aggregate == pytest.approx(0.575)
    assert res.item_ids == ["a", "b"]
    assert metric.direction == "lower"
    assert METRICS.get("prob")("retain").direction == "higher"


def test_prob_option_normalised_on_real_authors() -> None:
    # .4 / (.4 + .1 + .3) = .5 (TOFU's 1e-10 guard is below the tolerance)
    scorer = FakeScorer({"T": ts([LN(0.4)]), "W1": ts([LN(0.1)]), "W2": ts([LN(0.3)])})
    task = make_task(real_authors=[qa("a", "T", pert=("W1", "W2"))])
    _, res = run("real_authors/prob", task, scorer)
    assert res.aggregate == pytest.approx(0.5)


def test_rouge_recall_with_stemmer_keeps_generations() -> None:
    # LCS("the cats sat", "the cat sat on the mat") = 3 once "cats" is stemmed to "cat": 3 / 6 = .5
    task = make_task(forget=[qa("a", "the cat sat on the mat")])
    scorer = FakeScorer(gens={"Q: qa\nA:": "the cats sat"})
    _, res = run("forget/rouge", task, scorer)
    assert res.aggregate == pytest.approx(0.5)
    assert res.generations == {"a": "the cats sat"}


def test_truth_ratio_forget_and_retain_forms() -> None:
    # item a: R = sqrt(.1 * .4) / .5 = .2 / .5 = .4 ; item b: R = sqrt(.5 * .5) / .2 = 2.5
    # forget: mean(min(.4, 2.5), min(2.5, .4)) = .4 ; retain: mean(max(0, .6), max(0, -1.5)) = .3
    table = {"P": ts([LN(0.5)]), "w1": ts([LN(0.1)]), "w2": ts([LN(0.4)]),
             "P2": ts([LN(0.2)]), "w3": ts([LN(0.5)]), "w4": ts([LN(0.5)])}
    items = [qa("a", "A", "P", ("w1", "w2")), qa("b", "B", "P2", ("w3", "w4"))]
    task = make_task(forget=items, retain=items)
    _, forget = run("forget/truth_ratio", task, FakeScorer(table))
    assert forget.values == pytest.approx([0.4, 2.5])
    assert forget.aggregate == pytest.approx(0.4)
    _, retain = run("retain/truth_ratio", task, FakeScorer(table))
    assert retain.aggregate == pytest.approx(0.3)


def test_truth_ratio_uses_the_original_answer_on_world_facts() -> None:
    # world facts compare with the original answer "A" (.5), not the paraphrase "P" (.1):
    # R = .25 / .5 = .5 ; max(0, 1 - .5) = .5
    scorer = FakeScorer({"A": ts([LN(0.5)]), "P": ts([LN(0.1)]), "w": ts([LN(0.25)])})
    task = make_task(world_facts=[qa("a", "A", "P", ("w",))])
    _, res = run("world_facts/truth_ratio", task, scorer)
    assert res.aggregate == pytest.approx(0.5)
    assert [r.answer for r in scorer.scored] == [" A", " w"]


def test_truth_ratio_is_skipped_without_perturbed_answers() -> None:
    task = make_task(forget=[qa("a", "A")])
    reason = METRICS.get("truth_ratio")("forget").missing(task, None)
    assert reason == "1 items of 'forget' have no perturbed answers"


def test_extraction_strength_and_exact_memorization() -> None:
    # labels 5 6 7 8, argmax 5 9 7 8: 3 of 4 match -> EM .75; last mismatch at index 1, so the
    # model completes the answer from prefix length k* = 2 on -> ES = 1 - 2/4 = .5 (every token
    # counted: eval.end_token keep)
    scorer = FakeScorer({"A": ts([-1.0] * 4, tokens=[5, 6, 7, 8], argmax=[5, 9, 7, 8])})
    task = make_task(forget=[qa("a", "A")])
    keep = EvalOptions(end_token="keep")
    assert run("forget/exact_memorization", task, scorer, options=keep)[1].aggregate == pytest.approx(0.75)
    assert run("forget/extraction_strength", task, scorer, options=keep)[1].aggregate == pytest.approx(0.5)


def test_argmax_metrics_leave_out_the_end_token_by_default() -> None:
    # labels 5 6 7 | 0 (the end token), argmax 5 9 7 | 0. Without the end token (open-unlearning's
    # [:-1]): EM = 2/3, ES = 1 - 2/3 = 1/3. Counting it: EM = 3/4, ES = 1 - 2/4 = 1/2.
    scorer = FakeScorer({"A": ts([-1.0] * 4, tokens=[5, 6, 7, 0], argmax=[5, 9, 7, 0])})
    task = make_task(forget=[qa("a", "A")])
    em = run("forget/exact_memorization", task, scorer)[1]
    assert em.aggregate == pytest.approx(2 / 3) and em.extra["end_token"].startswith("dropped")
    assert run("forget/extraction_strength", task, scorer)[1].aggregate == pytest.approx(1 / 3)
    keep = EvalOptions(end_token="keep")
    assert run("forget/exact_memorization", task, scorer, options=keep)[1].aggregate == pytest.approx(3 / 4)
    assert run("forget/extraction_strength", task, scorer, options=keep)[1].aggregate == pytest.approx(1 / 2)


# ------------------------------------------------------------------ MUSE -----------------------


def test_verbmem_f1_against_the_truncated_continuation() -> None:
    # the reference is cut to 3 tokens: "c d e". LCS("c d x", "c d e") = 2, P = R = 2/3 -> F1 = 2/3
    task = make_task(forget_bio=[Text("a b c d e f", id="t", prompt="a b", continuation="c d e f")])
    scorer = FakeScorer(gens={"a b": "c d x"})
    _, res = run("forget_bio/verbmem", task, scorer, options=EvalOptions(verbmem_max_new_tokens=3))
    assert res.aggregate == pytest.approx(2 / 3)


def test_knowmem_few_shot_prompt_stops_and_f1() -> None:
    # item a: "Paris\n\nQuestion: x" is cut at "\n\n" -> "Paris" = answer -> 1 ; item b: "London"
    # shares no word with "Rome" -> 0 ; mean .5. Shots come from the _icl split.
    icl = [qa("s", "Oslo")]
    items = [qa("a", "Paris"), qa("b", "Rome")]
    head = "Question: qs\nAnswer: Oslo\n\n"
    gens = {head + "Question: qa\nAnswer: ": "Paris\n\nQuestion: x", head + "Question: qb\nAnswer: ": "London"}
    task = make_task(knowmem_forget=items, knowmem_forget_icl=icl)
    _, res = run("knowmem_forget/knowmem", task, FakeScorer(gens=gens), options=EvalOptions(knowmem_shots=1))
    assert res.values == pytest.approx([1.0, 0.0])
    assert res.generations == {"a": "Paris", "b": "London"}


# ------------------------------------------------------------------ privacy --------------------

MEMBERS = [qa("m1", "M1"), qa("m2", "M2")]
NONMEMBERS = [qa("n1", "N1"), qa("n2", "N2")]


def mia_task() -> UnlearningTask:
    return make_task(forget=MEMBERS, holdout=NONMEMBERS)


def test_mia_loss_auc() -> None:
    # scores (mean log p): members -1, -2 ; non-members -3, -1.5. Member beats non-member in
    # 3 of the 4 pairs (-2 < -1.5 is the miss) -> AUC .75
    table = {"M1": ts([-1.0]), "M2": ts([-2.0, -2.0]), "N1": ts([-3.0]), "N2": ts([-1.0, -2.0])}
    metric, res = run("forget/mia_loss", mia_task(), FakeScorer(table))
    assert res.values == pytest.approx([-1.0, -2.0, -3.0, -1.5])
    assert res.item_ids == ["m1", "m2", "n1", "n2"]
    assert res.aggregate == pytest.approx(0.75)
    assert metric.direction == "closer_to_half"


def test_mia_min_k_and_zlib_scores() -> None:
    # k = .5 of two tokens -> the lowest one: member m1 [-1, -3] -> -3 ; others -1 (default)
    table = {"M1": ts([-1.0, -3.0])}
    keep = EvalOptions(k=0.5, end_token="keep")
    _, res = run("forget/mia_min_k", mia_task(), FakeScorer(table), options=keep)
    assert res.values == pytest.approx([-3.0, -1.0, -1.0, -1.0])
    # By default a QA's last scored token (its end token) is left out: m1 keeps only -1.
    _, res = run("forget/mia_min_k", mia_task(), FakeScorer(table), options=EvalOptions(k=0.5))
    assert res.values == pytest.approx([-1.0, -1.0, -1.0, -1.0]) and res.extra["end_token"].startswith("dropped")
    # zlib: mean log p / compressed length of the answer text
    _, z = run("forget/mia_zlib", mia_task(), FakeScorer(table))
    assert z.values[0] == pytest.approx(-2.0 / len(zlib.compress(b"M1")))


def test_mia_min_k_plus_plus_standardises() -> None:
    # m1: z = ((-1 - -2) / sqrt(4), (-3 - -1) / sqrt(1)) = (.5, -2); k = .5 keeps the lowest: -2
    table = {"M1": ts([-1.0, -3.0], mean=[-2.0, -1.0], var=[4.0, 1.0])}
    for name in ("M2", "N1", "N2"):
        table[name] = ts([-1.0], mean=[-1.0], var=[1.0])  # z = 0
    _, res = run("forget/mia_min_k_pp", mia_task(), FakeScorer(table), options=EvalOptions(k=0.5, end_token="keep"))
    assert res.values == pytest.approx([-2.0, 0.0, 0.0, 0.0])
    _, res = run("forget/mia_min_k_pp", mia_task(), FakeScorer(table), options=EvalOptions(k=0.5))
    assert res.values == pytest.approx([0.5, 0.0, 0.0, 0.0])  # the end token's z = -2 left out
    assert METRICS.get("mia_min_k_pp").vocab_stats


def test_mia_reference_subtracts_the_reference_run() -> None:
    # target mean log p is -1 everywhere; the reference run stored m1 -3, m2 -1, n1 -1, n2 -0.5,
    # so the scores are m1 2, m2 0, n1 0, n2 -.5. Member/non-member pairs: (2, 0) win, (2, -.5)
    # win, (0, 0) tie = .5, (0, -.5) win -> 3.5 of 4 -> AUC .875
    ref = {"metrics": {"forget/mia_loss": {"values": [-3.0, -1.0, -1.0, -0.5], "item_ids": ["m1", "m2", "n1", "n2"]}}}
    _, res = run("forget/mia_reference", mia_task(), FakeScorer(), reference=ref)
    assert res.values == pytest.approx([2.0, 0.0, 0.0, -0.5])
    assert res.aggregate == pytest.approx(0.875)
    metric = METRICS.get("mia_reference")("forget")
    assert metric.missing(mia_task(), None) is not None
    with pytest.raises(ConfigError, match="forget/mia_loss"):
        metric.check_reference(mia_task(), {"metrics": {}})


def test_gradient_norm_of_a_bias_only_model() -> None:
    # logits = b = (0, 0) at every position; the answer token is 1: dL/db = softmax(b) - onehot(1)
    # = (.5, -.5), norm sqrt(.5) ~ .7071 ; one parameter tensor, so the mean is the same
    import torch

    class BiasModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = torch.nn.Parameter(torch.zeros(2), requires_grad=False)

        def forward(self, input_ids: torch.Tensor) -> object:
            return type("Out", (), {"logits": self.b.expand(*input_ids.shape, 2)})()

    class TwoTokens:
        end_id = 0

        def prompt_ids(self, prompt: str) -> list[int]:
            return [0]

        def answer_ids(self, answer: str) -> list[int]:
            return [1]

    model = BiasModel()
    norms = gradient_norms(model, TwoTokens(), [ScoreRequest("p", "a", False)])
    assert norms == pytest.approx([math.sqrt(0.5)])
    assert model.b.grad is None and not model.b.requires_grad  # left as it was
    # With the end token (label 0) the two labels' gradients (.5, -.5) and (-.5, .5) cancel;
    # leaving it out (open-unlearning's [:-1]) gives the answer token's gradient alone.
    with_end = [ScoreRequest("p", "a", True)]
    assert gradient_norms(model, TwoTokens(), with_end) == pytest.approx([0.0])
    assert gradient_norms(model, TwoTokens(), with_end, drop_end=[True]) == pytest.approx([math.sqrt(0.5)])
    ctx = EvalContext(mia_task(), FakeScorer())
    with pytest.raises(MetricSkipped, match="model"):
        METRICS.get("mia_gradnorm")("forget").compute(ctx)


def test_bf16_gradient_norms_equal_those_of_autocast_casting_every_pass(tiny_trained: Any) -> None:
    """GradNorm under bf16 takes each linear layer's gradient from a bf16 copy cast once: the same norms."""
    import torch

    from obliviate.data.formatting import PromptFormatter, encode_pair
    from obliviate.models.precision import bf16_autocast

    model = tiny_trained.model()
    formatter = PromptFormatter(tiny_trained.tokenizer)
    records = tiny_trained.task.forget[:3]
    requests = [ScoreRequest(formatter.prompt(r.question), formatter.answer(r.answer)) for r in records]
    expected = []
    for p in model.parameters():
        p.requires_grad_(True)
    for r in requests:  # the plain autocast pass: every weight cast on the forward, cast back on the backward
        enc = encode_pair(formatter, r.prompt, r.answer, 512, add_end=r.add_end)
        model.zero_grad(set_to_none=True)
        with bf16_autocast("cpu"):
            logits = model(input_ids=torch.tensor([enc.input_ids])).logits[:, :-1].float()
        torch.nn.functional.cross_entropy(logits[0], torch.tensor(enc.labels[1:]), ignore_index=-100).backward()
        expected.append(float(torch.stack([p.grad.float().norm(2) for p in model.parameters()]).mean()))
    for p in model.parameters():  # a model fresh from training still holds its last step's gradients
        p.grad = torch.ones_like(p)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # the tied case is covered
    assert gradient_norms(model, formatter, requests, bf16=True) == expected
    assert all(p.grad is None for p in model.parameters())


def test_nonmember_split_pairs_bios_with_holdout_bios() -> None:
    task = make_task(forget=MEMBERS, holdout=NONMEMBERS, forget_bio=[Text("x", id="x")],
                     holdout_bio=[Text("y", id="y")], privleak_forget=[Text("z", id="z")])
    assert nonmember_split(task, "forget_bio") == "holdout_bio"
    assert nonmember_split(task, "privleak_forget") == "holdout"


def test_forget_quality_ks_p_value() -> None:
    # identical samples: KS D = 0 -> p = 1. Disjoint samples of 3 and 3: D = 1 and the exact
    # two-sided p-value is 2 / C(6, 3) = 2 / 20 = .1
    results = {"forget/truth_ratio": {"values": [1.0, 2.0, 3.0]}}
    same = {"metrics": {"forget/truth_ratio": {"values": [1.0, 2.0, 3.0]}}}
    far = {"metrics": {"forget/truth_ratio": {"values": [10.0, 11.0, 12.0]}}}
    assert run("forget_quality", mia_task(), FakeScorer(), results=results, reference=same)[1].aggregate == 1.0
    assert run("forget_quality", mia_task(), FakeScorer(), results=results, reference=far)[1].aggregate == pytest.approx(0.1)


def test_privleak_against_reference_muse_constant_and_default() -> None:
    # ((1 - .9) - (1 - .6)) / (1 - .6) * 100 = (.1 - .4) / .4 * 100 = -75
    results = {"forget/mia_min_k": {"aggregate": 0.9}}
    ref = {"metrics": {"forget/mia_min_k": {"aggregate": 0.6}}}
    assert run("privleak", mia_task(), FakeScorer(), results=results, reference=ref)[1].aggregate == pytest.approx(-75.0)
    # no reference: AUC .5 -> (.1 - .5) / .5 * 100 = -80
    assert run("privleak", mia_task(), FakeScorer(), results=results)[1].aggregate == pytest.approx(-80.0)
    # MUSE News constant .4772 is 1 - AUC in our convention; an AUC of .5228 then leaks 0
    task = mia_task()
    task.metadata["privleak_auc_retrain"] = 0.4772
    same = {"forget/mia_min_k": {"aggregate": 0.5228}}
    assert run("privleak", task, FakeScorer(), results=same)[1].aggregate == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------ utility --------------------


def test_model_utility_harmonic_mean_of_nine() -> None:
    # eight components at .5 and one at .25: 9 / (8/.5 + 1/.25) = 9 / 20 = .45
    task = make_task(retain=[qa("r", "R")], real_authors=[qa("a", "A")], world_facts=[qa("w", "W")])
    metric = METRICS.get("model_utility")()
    keys = metric.components(task)
    assert keys[:3] == ["retain/prob", "retain/rouge", "retain/truth_ratio"] and len(keys) == 9
    results = {k: {"aggregate": 0.5} for k in keys}
    results["world_facts/rouge"] = {"aggregate": 0.25}
    assert run("model_utility", task, FakeScorer(), results=results)[1].aggregate == pytest.approx(0.45)


def test_fluency_weighted_entropy() -> None:
    # "a b a b": bigrams ab, ba, ab -> H2 = -(2/3 log2 2/3 + 1/3 log2 1/3) = .91830 ;
    # trigrams aba, bab -> H3 = 1 ; (2/3 * .91830 + 4/3 * 1) / 2 = .97277
    task = make_task(forget=[qa("a", "A")])
    _, res = run("forget/fluency", task, FakeScorer(gens={"Q: qa\nA:": "a b a b"}))
    assert res.aggregate == pytest.approx(0.97277, abs=1e-5)


def test_mcq_accuracy_picks_the_most_likely_letter() -> None:
    # question 1: " B" is most likely and right ; question 2: " A" most likely, " B" right -> .5
    items = [MCQ("q1", ("x", "y"), 1, id="1"), MCQ("q2", ("x", "y"), 1, id="2")]
    assert mcq_prompt(items[0]) == "q1\nA. x\nB. y\nAnswer:"

    class LetterScorer(FakeScorer):
        def score(self, requests: Sequence[ScoreRequest], *, vocab_stats: bool = False) -> list[TokenScores]:
            best = {"q1": " B", "q2": " A"}
            return [ts([-0.1 if r.answer == best[r.prompt.split(chr(10))[0]] else -2.0]) for r in requests]

    _, res = run("mcq/mcq_accuracy", make_task(mcq=items), LetterScorer())
    assert res.values == [1.0, 0.0] and res.aggregate == 0.5


# ------------------------------------------------------------------ registry -------------------


def test_every_metric_is_registered_with_its_description() -> None:
    assert len(METRICS) == 18
    for name in METRICS.names():
        cls = METRICS.get(name)
        metric = cls("forget" if cls.takes_split else None)
        assert metric.name == name
        assert metric.description and metric.direction
        if isinstance(cls.__dict__.get("description"), str):
            assert METRICS.help(name) == cls.description


def test_split_binding_errors_say_how_to_write_the_key() -> None:
    with pytest.raises(ConfigError, match="forget/rouge"):
        METRICS.get("rouge")()
    with pytest.raises(ConfigError, match="write it as forget_quality"):
        METRICS.get("forget_quality")("forget")


def test_ls_metrics_states_where_definitions_differ_from_open_unlearning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from obliviate.cli.main import main

    assert main(["ls", "metrics"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "differ from open-unlearning's, on purpose" in printed
    assert (
        "mia_zlib: the zlib length is that of the answer as written (UTF-8), where open-unlearning "
        "compresses the decoded tokens with a leading space; the AUC moves by at most 0.002."
    ) in printed
    assert (
        "extraction_strength: an answer whose last token is wrong scores 0 (k* = |y|), as the "
        "definition has it, where open-unlearning's loop stops at k = |y| - 1 and gives 1/|y|."
    ) in printed
