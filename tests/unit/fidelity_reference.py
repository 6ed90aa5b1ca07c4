"""An independent, one-item-at-a-time fp32 reference for every registered evaluation metric.

Written from the official definitions (TOFU, MUSE, open-unlearning, ROME/RWKU, the Min-K%++ and
GradNorm attacks; see /work/shared/reference/methods-and-metrics.md, sections 1 and 4) and NOT from
obliviate's code: nothing here imports ``obliviate.scoring``, ``obliviate.metrics`` or
``obliviate.data.formatting``. Every sequence is run through the Hugging Face model on its own
(batch size 1, no padding, no shared key/value cache, no autocast, fp32 logits, ``torch.no_grad``);
greedy generation recomputes the whole sequence at every step.

The only things read from obliviate are the data (an ``UnlearningTask``: its splits, records and
split roles) and the option *values* (an object with EvalOptions' field names).

Result layout (as in run.json): ``{key: {"values": [...], "aggregate": float, "item_ids": [...]}}``
with ``key`` = ``split/name`` or ``name``; generations as ``{split: {item_id: text}}``.

Conventions (the target semantics):

- QA prompt (plain format): ``f"Question: {q}\\nAnswer:"`` tokenized with the tokenizer's own
  special-token rule; the answer ``" " + a.lstrip()`` without special tokens, then the end token
  ``tokenizer.eos_token_id``. Labels = answer tokens + end token.
- Raw text: ``tokenizer(text, add_special_tokens=True)``; every token after the first is a label.
- Membership scores are signed "higher = member"; AUROC with members (forget) labelled 1.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rouge_score import rouge_scorer
from scipy import stats
from sklearn.metrics import roc_auc_score


class NeedsReference(Exception):
    """A reference-relative metric asked of a Reference that was given no reference model."""


OPTION_EPS = 1e-10  # open-unlearning probability_w_options guard
VAR_FLOOR = 1e-6  # open-unlearning Min-K%++ clamp on sigma^2
KNOWMEM_STOPS = ("\n\n", "\nQuestion", "Question:")  # MUSE KnowMem output truncation
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TOFU_UTILITY_SPLITS = ("retain", "real_authors", "world_facts")


# ------------------------------------------------------------------------------ model access ----


@dataclass
class Scored:
    """Per-label quantities of one sequence (labels = the scored tokens, in order)."""

    labels: list[int]
    logprobs: np.ndarray  # log p(label_t | prefix), fp64 copy of fp32 values
    argmax: list[int]  # teacher-forced argmax at each label position
    mu: np.ndarray  # sum_v p_v log p_v at each label position
    var: np.ndarray  # sum_v p_v (log p_v)^2 - mu^2 at each label position
    end: bool  # whether the last label is an appended end token

    def drop_end(self) -> Scored:
        """Without the end token's position (open-unlearning's ``[:-1]``), if there is one."""
        if not self.end:
            return self
        return Scored(self.labels[:-1], self.logprobs[:-1], self.argmax[:-1], self.mu[:-1], self.var[:-1], False)


class RefModel:
    """A Hugging Face causal LM and its tokenizer, evaluated one sequence at a time in fp32."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model.eval()
        self.tok = tokenizer
        self.eos = int(tokenizer.eos_token_id)
        for p in model.parameters():
            if p.dtype != torch.float32:
                raise AssertionError(f"the reference runs in fp32; got a {p.dtype} parameter")
        self._cache: dict[tuple[tuple[int, ...], int, bool], Scored] = {}

    # -- tokenization (the target definitions, written out) --
    def prompt_ids(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=True)["input_ids"])

    def plain_ids(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    @staticmethod
    def qa_prompt(question: str) -> str:
        return f"Question: {question}\nAnswer:"

    def qa_sequence(self, question: str, answer: str) -> tuple[list[int], int, bool]:
        p = self.prompt_ids(self.qa_prompt(question))
        a = self.plain_ids(" " + answer.lstrip()) + [self.eos]
        return p + a, len(p), True

    def text_sequence(self, text: str) -> tuple[list[int], int, bool]:
        ids = self.prompt_ids(text)
        return ids, 1, False  # every token after the first is scored

    def pair_sequence(self, prompt: str, continuation: str) -> tuple[list[int], int, bool]:
        """A raw prompt and a continuation without an end token (MCQ choice letters)."""
        p = self.prompt_ids(prompt)
        return p + self.plain_ids(continuation), len(p), False

    # -- forward passes --
    @torch.no_grad()
    def _logprobs(self, ids: list[int]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        logits = self.model(input_ids=torch.tensor([ids], device=device)).logits[0]
        assert logits.dtype == torch.float32
        return torch.log_softmax(logits.float(), dim=-1)

    def score(self, seq: tuple[list[int], int, bool]) -> Scored:
        ids, start, end = seq
        key = (tuple(ids), start, end)
        if key not in self._cache:
            assert 1 <= start < len(ids)
            logp = self._logprobs(ids)[start - 1 : len(ids) - 1]  # position t-1 predicts token t
            labels = torch.tensor(ids[start:], device=logp.device)
            lp = logp.gather(1, labels[:, None])[:, 0]
            p = logp.exp()
            mu = (p * logp).sum(-1)
            var = (p * logp * logp).sum(-1) - mu * mu
            self._cache[key] = Scored(
                ids[start:], lp.double().cpu().numpy(), logp.argmax(-1).tolist(),
                mu.double().cpu().numpy(), var.double().cpu().numpy(), end,
            )
        return self._cache[key]

    def mean_lp(self, seq: tuple[list[int], int, bool]) -> float:
        return float(self.score(seq).logprobs.mean())

    @torch.no_grad()
    def greedy(self, prompt_text: str, max_new_tokens: int) -> str:
        """Greedy continuation: argmax of a full forward at every step, stop at the end token."""
        ids = self.prompt_ids(prompt_text)
        out: list[int] = []
        for _ in range(max_new_tokens):
            nxt = int(self._logprobs(ids + out)[-1].argmax())
            if nxt == self.eos:
                break
            out.append(nxt)
        return self.tok.decode(out, skip_special_tokens=True)

    def gradnorm(self, seq: tuple[list[int], int, bool], drop_end: bool) -> float:
        """Mean over parameter tensors of ||d L / d W||_2, L = mean NLL of the labels (batch size 1)."""
        ids, start, end = seq
        labels = ids[start:]
        if drop_end and end and len(labels) > 1:
            labels = labels[:-1]
        params = list(self.model.parameters())
        saved = [p.requires_grad for p in params]
        try:
            for p in params:
                p.requires_grad_(True)
                p.grad = None
            device = params[0].device
            with torch.enable_grad():
                logits = self.model(input_ids=torch.tensor([ids], device=device)).logits[0].float()
                logp = torch.log_softmax(logits, dim=-1)[start - 1 : start - 1 + len(labels)]
                nll = -logp.gather(1, torch.tensor(labels, device=device)[:, None])[:, 0]
                nll.mean().backward()
            norms = [float(p.grad.norm(2)) for p in params if p.grad is not None]
            return float(np.mean(norms))
        finally:
            for p, flag in zip(params, saved):
                p.grad = None
                p.requires_grad_(flag)


# ----------------------------------------------------------------------------- formulas ----------


def rouge_l(prediction: str, reference: str, *, recall: bool, stemmer: bool) -> float:
    s = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stemmer).score(reference, prediction)["rougeL"]
    return float(s.recall if recall else s.fmeasure)


def auroc(members: Sequence[float], nonmembers: Sequence[float]) -> float:
    y = [1] * len(members) + [0] * len(nonmembers)
    return float(roc_auc_score(y, list(members) + list(nonmembers)))


def lowest_k_mean(values: np.ndarray, k: float) -> float:
    n = max(1, math.floor(k * len(values)))
    return float(np.sort(values)[:n].mean())


def extraction_strength(pred: list[int], labels: list[int]) -> float:
    n = len(labels)
    for k in range(n + 1):  # the smallest prefix length after which all the rest is predicted
        if all(p == y for p, y in zip(pred[k:], labels[k:])):
            return 1.0 - k / n
    raise AssertionError("unreachable")


_WORDS = re.compile(r"\w+|[^\w\s]")


def ngram_entropy_bits(text: str, n: int) -> float:
    # ROME's compute_freq uses nltk.word_tokenize (punkt data, not available offline): this
    # approximates it with words and single punctuation marks.
    words = _WORDS.findall(text)
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0.0
    f = np.array(list(grams.values()), dtype=np.float64)
    f = f / f.sum()
    return float(np.sum(-f * np.log(f) / np.log(2)))


def rome_fluency(text: str) -> float:
    """ROME ``compute_n_gram_entropy``: np.mean([2/3 * H_2, 4/3 * H_3]) (bits)."""
    return float(np.mean([w * ngram_entropy_bits(text, n) for n, w in zip((2, 3), (2 / 3, 4 / 3))]))


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    positions = [text.find(s) for s in stops if s and s in text]
    return text[: min(positions)] if positions else text


def mcq_prompt(question: str, choices: Sequence[str]) -> str:
    lines = [question.strip()] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
    return "\n".join(lines) + "\nAnswer:"


# ----------------------------------------------------------------------------- the reference ----


def _entry(values: list[float], aggregate: float, ids: list[str]) -> dict[str, Any]:
    return {"values": [float(v) for v in values], "aggregate": float(aggregate), "item_ids": list(ids)}


class Reference:
    """Reference values of metric keys for one model on one task.

    Args:
        model: the RefModel.
        task: the benchmark (splits and roles only).
        options: an object with EvalOptions' field names (max_items, k, max_new_tokens, ...).
        reference: another Reference (the retain-only model), for forget_quality, privleak and
            mia_reference; None means none was given.
    """

    def __init__(self, model: RefModel, task: Any, options: Any, reference: Reference | None = None) -> None:
        self.m = model
        self.task = task
        self.o = options
        self.ref = reference
        self.generations: dict[str, dict[str, str]] = {}
        self._done: dict[str, dict[str, Any]] = {}
        if options.end_token != "drop":
            raise NotImplementedError("the reference follows open-unlearning: eval.end_token drop")

    # -- data --
    def items(self, split: str) -> list[Any]:
        recs = list(self.task.all_splits()[split])
        return recs[: self.o.max_items] if self.o.max_items else recs

    def is_options(self, split: str) -> bool:
        return self.task.has_role(split, "options")

    @staticmethod
    def is_qa(rec: Any) -> bool:
        return hasattr(rec, "question") and hasattr(rec, "answer") and not hasattr(rec, "choices")

    def seq(self, rec: Any) -> tuple[list[int], int, bool]:
        return self.m.qa_sequence(rec.question, rec.answer) if self.is_qa(rec) else self.m.text_sequence(rec.text)

    def nonmembers(self, split: str) -> str:
        other = split.replace("forget", "holdout")
        splits = self.task.all_splits()
        return other if other != split and splits.get(other) else "holdout"

    # -- public --
    def entry(self, key: str) -> dict[str, Any]:
        """The reference entry of ``key``; KeyError for a metric with no reference implementation."""
        if key not in self._done:
            split, _, name = key.rpartition("/")
            fn = getattr(self, f"m_{name}", None)
            if fn is None:
                raise KeyError(f"no reference implementation of metric {name!r}")
            self._done[key] = fn(split or None)
        return self._done[key]

    # -- TOFU --
    def m_prob(self, split: str) -> dict[str, Any]:
        values, ids = [], []
        for q in self.items(split):
            p_true = math.exp(self.m.mean_lp(self.m.qa_sequence(q.question, q.answer)))
            if self.is_options(split) and q.perturbed_answers:
                p_wrong = sum(math.exp(self.m.mean_lp(self.m.qa_sequence(q.question, a))) for a in q.perturbed_answers)
                values.append(p_true / (p_true + p_wrong + OPTION_EPS))
            else:
                values.append(p_true)
            ids.append(q.id)
        return _entry(values, float(np.mean(values)), ids)

    def _answers(self, split: str, max_new_tokens: int) -> tuple[list[Any], list[str]]:
        items = self.items(split)
        gens = [self.m.greedy(self.m.qa_prompt(q.question), max_new_tokens) for q in items]
        self.generations.setdefault(split, {}).update({q.id: g for q, g in zip(items, gens)})
        return items, gens

    def m_rouge(self, split: str) -> dict[str, Any]:
        items, gens = self._answers(split, self.o.max_new_tokens)
        values = [rouge_l(g, q.answer, recall=True, stemmer=True) for q, g in zip(items, gens)]
        return _entry(values, float(np.mean(values)), [q.id for q in items])

    def truth_ratios(self, split: str) -> tuple[list[float], list[str]]:
        values, ids = [], []
        for q in self.items(split):
            # TOFU: forget/retain compare with the paraphrased answer, RA/WF with the original one.
            true = q.answer if self.is_options(split) or not q.paraphrased_answer else q.paraphrased_answer
            lp_true = self.m.mean_lp(self.m.qa_sequence(q.question, true))
            lp_pert = [self.m.mean_lp(self.m.qa_sequence(q.question, a)) for a in q.perturbed_answers]
            geo_pert = math.exp(float(np.mean(lp_pert)))  # geometric mean of length-normalised probs
            values.append(geo_pert / math.exp(lp_true))
            ids.append(q.id)
        return values, ids

    def m_truth_ratio(self, split: str) -> dict[str, Any]:
        r, ids = self.truth_ratios(split)
        if "forget" in split:
            agg = float(np.mean([min(x, 1 / x) for x in r]))
        else:
            agg = float(np.mean([max(0.0, 1 - x) for x in r]))
        return _entry(r, agg, ids)

    def m_forget_quality(self, split: None) -> dict[str, Any]:
        if self.ref is None:
            raise NeedsReference("forget_quality needs a reference model")
        ours, _ = self.truth_ratios("forget")
        theirs, _ = self.ref.truth_ratios("forget")
        return _entry([], float(stats.ks_2samp(ours, theirs).pvalue), [])

    def m_model_utility(self, split: None) -> dict[str, Any]:
        retain = next((s for s in self.task.role("utility_retain")), "retain")
        keys = [f"{s}/{n}" for s in (retain, *TOFU_UTILITY_SPLITS[1:]) for n in ("prob", "rouge", "truth_ratio")]
        values = [self.entry(k)["aggregate"] for k in keys]
        agg = 0.0 if min(values) == 0 else float(stats.hmean(values))
        return _entry(values, agg, keys)

    # -- open-unlearning memorization --
    def _argmax_metric(self, split: str, fn: Any) -> dict[str, Any]:
        values, ids = [], []
        for q in self.items(split):
            s = self.m.score(self.m.qa_sequence(q.question, q.answer)).drop_end()  # "ignore eos prediction"
            values.append(fn(s.argmax, s.labels))
            ids.append(q.id)
        return _entry(values, float(np.mean(values)), ids)

    def m_exact_memorization(self, split: str) -> dict[str, Any]:
        return self._argmax_metric(split, lambda p, y: float(np.mean([a == b for a, b in zip(p, y)])))

    def m_extraction_strength(self, split: str) -> dict[str, Any]:
        return self._argmax_metric(split, extraction_strength)

    # -- MUSE --
    def m_verbmem(self, split: str) -> dict[str, Any]:
        n = self.o.verbmem_max_new_tokens
        items = self.items(split)
        values, gens = [], {}
        for t in items:
            g = self.m.greedy(t.prompt, n)
            truth = self.m.tok.decode(self.m.prompt_ids(t.continuation)[:n], skip_special_tokens=True)
            values.append(rouge_l(g, truth, recall=False, stemmer=False))
            gens[t.id] = g
        self.generations.setdefault(split, {}).update(gens)
        return _entry(values, float(np.mean(values)), [t.id for t in items])

    def m_knowmem(self, split: str) -> dict[str, Any]:
        splits = self.task.all_splits()
        pool_all = splits.get(f"{split}_icl") or splits[split]
        items = self.items(split)
        values, gens = [], {}
        for q in items:
            shots = [s for s in pool_all if self.is_qa(s) and s.id != q.id][: self.o.knowmem_shots]
            prompt = "".join(f"Question: {s.question}\nAnswer: {s.answer}\n\n" for s in shots)
            prompt += f"Question: {q.question}\nAnswer: "
            g = cut_at_stops(self.m.greedy(prompt, self.o.knowmem_max_new_tokens), KNOWMEM_STOPS)
            values.append(rouge_l(g, q.answer, recall=False, stemmer=False))
            gens[q.id] = g
        self.generations.setdefault(split, {}).update(gens)
        return _entry(values, float(np.mean(values)), [q.id for q in items])

    # -- utility --
    def m_fluency(self, split: str) -> dict[str, Any]:
        items, gens = self._answers(split, self.o.max_new_tokens)
        values = [rome_fluency(g) for g in gens]
        return _entry(values, float(np.mean(values)), [q.id for q in items])

    def m_mcq_accuracy(self, split: str) -> dict[str, Any]:
        values, ids = [], []
        for q in self.items(split):
            prompt = mcq_prompt(q.question, q.choices)
            totals = [float(self.m.score(self.m.pair_sequence(prompt, f" {LETTERS[i]}")).logprobs.sum())
                      for i in range(len(q.choices))]
            values.append(float(int(np.argmax(totals)) == int(q.answer)))
            ids.append(q.id)
        return _entry(values, float(np.mean(values)), ids)

    # -- membership inference --
    def _attack(self, split: str, score: Any, n: int = 0) -> dict[str, Any]:
        mem, non = self.items(split), self.items(self.nonmembers(split))
        if n:
            mem, non = mem[:n], non[:n]
        a = [score(r) for r in mem]
        b = [score(r) for r in non]
        return _entry(a + b, auroc(a, b), [r.id for r in mem + non])

    def loss_score(self, r: Any) -> float:
        return float(self.m.score(self.seq(r)).logprobs.mean())  # QA: end token kept (open-unlearning LOSS)

    def m_mia_loss(self, split: str) -> dict[str, Any]:
        return self._attack(split, self.loss_score)

    def m_mia_zlib(self, split: str) -> dict[str, Any]:
        def score(r: Any) -> float:
            text = r.answer if self.is_qa(r) else r.text
            return self.loss_score(r) / len(zlib.compress(text.encode("utf-8")))

        return self._attack(split, score)

    def min_k_score(self, r: Any) -> float:
        return lowest_k_mean(self.m.score(self.seq(r)).drop_end().logprobs, self.o.k)

    def m_mia_min_k(self, split: str) -> dict[str, Any]:
        return self._attack(split, self.min_k_score)

    def m_mia_min_k_pp(self, split: str) -> dict[str, Any]:
        def score(r: Any) -> float:
            s = self.m.score(self.seq(r)).drop_end()
            z = (s.logprobs - s.mu) / np.sqrt(np.maximum(s.var, VAR_FLOOR))
            return lowest_k_mean(z, self.o.k)

        return self._attack(split, score)

    def m_mia_reference(self, split: str) -> dict[str, Any]:
        if self.ref is None:
            raise NeedsReference("mia_reference needs a reference model")
        return self._attack(split, lambda r: self.loss_score(r) - self.ref.loss_score(r))

    def m_mia_gradnorm(self, split: str) -> dict[str, Any]:
        n = self.o.gradnorm_items
        return self._attack(split, lambda r: -self.m.gradnorm(self.seq(r), drop_end=True), n=n)

    def m_privleak(self, split: None) -> dict[str, Any]:
        source = next(iter(self.task.role("privleak")), "forget")

        def muse_auc(ref: Reference) -> float:
            # MUSE: roc_curve(y, -Min40%) with forget labelled 0 and holdout labelled 1; -Min40% is
            # the mean of the lowest 40 % log-probs, which is min_k_score.
            mem, non = ref.items(source), ref.items(ref.nonmembers(source))
            y = [0] * len(mem) + [1] * len(non)
            return float(roc_auc_score(y, [ref.min_k_score(r) for r in mem + non]))

        auc = muse_auc(self)
        # Without a retrained model: open-unlearning's default reference AUC 0.5.
        auc_ref = muse_auc(self.ref) if self.ref is not None else 0.5
        return _entry([], (auc - auc_ref) / auc_ref * 100.0, [])


# ----------------------------------------------------------------------------- comparison -------


def close(got: float | None, want: float, tol: float) -> bool:
    """|got - want| <= tol * max(1, |want|): absolute below 1, relative above (see test_fidelity)."""
    if got is None or not math.isfinite(got) or not math.isfinite(want):
        return got == want
    return abs(got - want) <= tol * max(1.0, abs(want))


def compare_entry(
    key: str, got: dict[str, Any] | None, want: dict[str, Any], *, agg_tol: float = 1e-6, item_tol: float = 1e-5
) -> list[str]:
    """Every difference between obliviate's run.json entry ``got`` and the reference ``want``."""
    if got is None:
        return [f"{key}: not in obliviate's results"]
    out = []
    if not close(got.get("aggregate"), want["aggregate"], agg_tol):
        out.append(f"{key}: aggregate {got.get('aggregate')!r} != reference {want['aggregate']!r} "
                   f"(diff {_diff(got.get('aggregate'), want['aggregate'])})")
    gv, wv = list(got.get("values") or []), want["values"]
    gi, wi = list(got.get("item_ids") or []), want["item_ids"]
    if gi != wi:
        out.append(f"{key}: item_ids differ: {gi[:4]}... vs {wi[:4]}...")
    if len(gv) != len(wv):
        out.append(f"{key}: {len(gv)} values != {len(wv)} reference values")
    else:
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(gv, wv)) if not close(g, w, item_tol)]
        if bad:
            worst = max(bad, key=lambda b: _diff(b[1], b[2]))
            out.append(f"{key}: {len(bad)}/{len(wv)} per-item values differ; worst item {worst[0]} "
                       f"({wi[worst[0]] if worst[0] < len(wi) else '?'}): {worst[1]!r} vs {worst[2]!r} "
                       f"(diff {_diff(worst[1], worst[2])})")
    return out


def compare_generations(split: str, got: dict[str, str], want: dict[str, str]) -> list[str]:
    """Differences between obliviate's stored generations of a split and the reference's."""
    out = []
    for item_id, text in want.items():
        if got.get(item_id) != text:
            out.append(f"{split}/{item_id}: generation {got.get(item_id)!r} != reference {text!r}")
    return out


def _diff(a: float | None, b: float) -> float:
    if a is None:
        return math.inf
    return abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
