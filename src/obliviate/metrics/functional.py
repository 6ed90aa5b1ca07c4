"""The pure numeric core of every evaluation metric: numbers and strings in, floats out.

Nothing here touches a model. Inputs are per-token log-probabilities of an answer (natural log,
one value per answer token, already gathered at the label ids), teacher-forced argmax ids, or
generated strings. The formulas follow the official code of TOFU, MUSE, open-unlearning, ROME and
RWKU; where they disagree, each docstring says which one is reproduced.

Membership-inference convention: every ``mia_*`` score is signed so that **higher means more
likely a member** (the Min-K%++ paper's convention). open-unlearning negates these scores
(higher = non-member) and labels the forget set 0; MUSE also labels the forget set 0. Both flips
cancel in open-unlearning, so :func:`mia_auc` equals its value; MUSE's raw AUC is ``1 - mia_auc``.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from rouge_score import rouge_scorer
from scipy import stats
from sklearn.metrics import roc_auc_score

from obliviate.errors import ConfigError, DataError

OPTION_EPS = 1e-10
"""Guard added to the denominator of the option-normalised probability (open-unlearning)."""

MIN_K_PP_VAR_FLOOR = 1e-6
"""Lower clamp on the vocabulary variance in Min-K%++ (open-unlearning)."""

MUSE_KNOWMEM_STOPS: tuple[str, ...] = ("\n\n", "\nQuestion", "Question:")
"""Strings at which MUSE KnowMem cuts a generated answer."""

FLUENCY_NS: tuple[int, ...] = (2, 3)
"""n-gram orders of the ROME/RWKU fluency entropy."""

FLUENCY_WEIGHTS: tuple[float, ...] = (2 / 3, 4 / 3)
"""Weights of the ROME/RWKU fluency entropy, one per order in :data:`FLUENCY_NS`."""

_WORD_RE = re.compile(r"\w+|[^\w\s]")


def _vector(values: ArrayLike, name: str, *, dtype: type = np.float64) -> np.ndarray:
    """Return ``values`` as a non-empty 1-D array, or raise a DataError that names ``name``."""
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(
            f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}; "
            "pass one value per answer token (or per item)."
        )
    if dtype is np.float64 and np.isnan(arr).any():
        raise DataError(f"{name} contains NaN; check the forward pass that produced it.")
    return arr


def _check_k(k: float) -> None:
    """Raise a ConfigError unless ``0 < k <= 1``."""
    if not 0.0 < k <= 1.0:
        raise ConfigError(f"k must be a fraction in (0, 1], got {k}; for example use k=0.4.")


# ---------------------------------------------------------------- TOFU --------------------------


def length_normalized_prob(token_logprobs: ArrayLike) -> float:
    """TOFU "Prob": exp of the mean per-token log-probability of an answer (exp(-S/|y|))."""
    return float(np.exp(_vector(token_logprobs, "token_logprobs").mean()))


def option_normalized_prob(true_lp: float, perturbed_lps: Sequence[float]) -> float:
    """TOFU Real Authors / World Facts "Prob": p̄_true / (p̄_true + Σ_j p̄_pert_j + 1e-10).

    Args:
        true_lp: mean per-token log-probability of the correct answer.
        perturbed_lps: mean per-token log-probability of each wrong option.
    """
    p_true = math.exp(true_lp)
    p_wrong = float(np.exp(_vector(perturbed_lps, "perturbed_lps")).sum())
    return p_true / (p_true + p_wrong + OPTION_EPS)


def truth_ratio(paraphrased_mean_lp: float, perturbed_mean_lps: Sequence[float]) -> float:
    """TOFU truth ratio R = (geometric mean of p̄ over perturbed answers) / p̄(paraphrased answer).

    Computed in log space, R = exp(mean_j lp_pert_j - lp_para), so no 1e-10 guard is needed.
    Every input is a per-token mean log-probability. For Forget/Retain pass the paraphrased
    answer; for Real Authors/World Facts pass the original answer.
    """
    pert = _vector(perturbed_mean_lps, "perturbed_mean_lps")
    return float(np.exp(pert.mean() - paraphrased_mean_lp))


def truth_ratio_forget_agg(ratios: ArrayLike) -> float:
    """Forget-split aggregate mean_i min(R_i, 1/R_i): 1 = true and false equally likely (best)."""
    r = _vector(ratios, "ratios")
    if (r < 0).any():
        raise DataError("truth ratios must be >= 0; pass the values returned by truth_ratio().")
    with np.errstate(divide="ignore"):
        return float(np.exp(-np.abs(np.log(r))).mean())  # min(R, 1/R), exact also at R = 0


def truth_ratio_retain_agg(ratios: ArrayLike) -> float:
    """Retain/Real Authors/World Facts aggregate mean_i max(0, 1 - R_i); higher is better."""
    return float(np.maximum(0.0, 1.0 - _vector(ratios, "ratios")).mean())


@functools.lru_cache(maxsize=2)
def _rouge_scorer(use_stemmer: bool) -> rouge_scorer.RougeScorer:
    """Build (once per stemmer setting) a ROUGE-L scorer."""
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


def rouge_l(prediction: str, reference: str, mode: str = "recall", stemmer: bool = True) -> float:
    """ROUGE-L of a generation against its reference, with the ``rouge_score`` package.

    Args:
        prediction: the generated text.
        reference: the ground-truth text.
        mode: "recall" (TOFU, RWKU) or "f1" (MUSE VerbMem and KnowMem).
        stemmer: Porter stemming; TOFU and open-unlearning use True, MUSE uses False.
    """
    if mode not in ("recall", "f1"):
        raise ConfigError(f"ROUGE-L mode must be 'recall' or 'f1', got {mode!r}.")
    score = _rouge_scorer(bool(stemmer)).score(reference, prediction)["rougeL"]
    return float(score.recall if mode == "recall" else score.fmeasure)


def forget_quality(model_tr: ArrayLike, retain_model_tr: ArrayLike) -> float:
    """TOFU Forget Quality: p-value of the two-sample KS test between forget truth ratios.

    Args:
        model_tr: per-item forget truth ratios of the evaluated model.
        retain_model_tr: the same for the retain model (never trained on the forget set).

    KS is invariant to monotone transforms, so R, 1/R or log R give the same p-value.
    """
    a = _vector(model_tr, "model_tr")
    b = _vector(retain_model_tr, "retain_model_tr")
    return float(stats.ks_2samp(a, b).pvalue)


def model_utility(values: ArrayLike) -> float:
    """TOFU Model Utility: harmonic mean (scipy.stats.hmean) of its component metrics.

    TOFU uses exactly nine numbers: {Prob, ROUGE-L recall, truth ratio (retain agg)} x {Retain,
    Real Authors, World Facts}. If any value is 0 the harmonic mean is 0 and 0.0 is returned (a
    single collapsed component collapses the utility, as in open-unlearning's GradAscent row).

    Raises:
        DataError: (a ValueError) if ``values`` is empty or holds a negative or non-finite value.
    """
    v = _vector(values, "values")
    if not np.isfinite(v).all() or (v < 0).any():
        raise DataError(f"model_utility needs finite values >= 0, got {v.tolist()}.")
    if (v == 0).any():
        return 0.0
    return float(stats.hmean(v))


# ------------------------------------------------------- membership inference -------------------


def mia_loss(token_logprobs: ArrayLike) -> float:
    """LOSS attack: mean token log-probability (= -mean NLL). Higher = more likely a member."""
    return float(_vector(token_logprobs, "token_logprobs").mean())


def mia_zlib(token_logprobs: ArrayLike, text: str) -> float:
    """Zlib attack: -(mean NLL) / len(zlib.compress(text as UTF-8)). Higher = member.

    open-unlearning and MUSE score mean NLL / zlib length (higher = non-member); this is its
    negation.
    """
    return mia_loss(token_logprobs) / len(zlib.compress(text.encode("utf-8")))


def mia_min_k(token_logprobs: ArrayLike, k: float = 0.4) -> float:
    """Min-K% Prob: mean of the lowest max(1, floor(k*T)) token log-probs. Higher = member.

    open-unlearning and MUSE (k = 0.4) report the negation; the Min-K% paper default is k = 0.2.
    """
    _check_k(k)
    lp = np.sort(_vector(token_logprobs, "token_logprobs"))
    return float(lp[: max(1, int(k * lp.size))].mean())


def vocab_moments(vocab_logprobs: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-position mean and variance of log p under p, from a (T, V) array of log-softmax values.

    mu_t = Σ_v p_v log p_v and var_t = Σ_v p_v (log p_v)^2 - mu_t^2, as Min-K%++ needs.
    """
    logp = np.asarray(vocab_logprobs, dtype=np.float64)
    if logp.ndim != 2 or logp.size == 0:
        raise DataError(f"vocab_logprobs must have shape (T, V), got {logp.shape}.")
    p = np.exp(logp)
    mu = (p * logp).sum(-1)
    return mu, (p * logp**2).sum(-1) - mu**2


def mia_min_k_plus_plus(
    token_logprobs: ArrayLike, mu: ArrayLike, var: ArrayLike, k: float = 0.4
) -> float:
    """Min-K%++: mean of the lowest max(1, floor(k*T)) of (log p(x_t) -
    mu_t)/sqrt(max(var_t, 1e-6)).

    Args:
        token_logprobs: log p(x_t | x_<t) per token.
        mu: per-position mean of log p over the vocabulary under p (see :func:`vocab_moments`).
        var: per-position variance of log p over the vocabulary under p.
        k: fraction of the lowest standardised scores to average.

    Higher = member; open-unlearning reports the negation.
    """
    _check_k(k)
    lp = _vector(token_logprobs, "token_logprobs")
    m, v = _vector(mu, "mu"), _vector(var, "var")
    if not lp.shape == m.shape == v.shape:
        raise DataError(f"token_logprobs, mu, var lengths differ: {lp.size}, {m.size}, {v.size}.")
    z = np.sort((lp - m) / np.sqrt(np.maximum(v, MIN_K_PP_VAR_FLOOR)))
    return float(z[: max(1, int(k * z.size))].mean())


def mia_reference(token_logprobs: ArrayLike, ref_token_logprobs: ArrayLike) -> float:
    """Reference attack: mean log p under the target minus mean log p under a reference model.

    Higher = member. open-unlearning scores NLL_target - NLL_ref, the negation.
    """
    return mia_loss(token_logprobs) - mia_loss(ref_token_logprobs)


def mia_gradnorm(grad_norm: float) -> float:
    """Gradient-norm attack from a precomputed norm: returns -norm (small gradient = member)."""
    return -float(grad_norm)


def mia_auc(member_scores: ArrayLike, nonmember_scores: ArrayLike) -> float:
    """AUROC of "higher = member" scores with members (forget set) labelled 1.

    1.0: the forget set still looks memorised; 0.5: indistinguishable from the holdout; below 0.5:
    the forget set looks *less* familiar than unseen data (over-unlearning). This equals
    open-unlearning's MIA value (both its sign and label flips cancel) and equals 1 - MUSE's raw
    AUC (MUSE labels the forget set 0).
    """
    mem = _vector(member_scores, "member_scores")
    non = _vector(nonmember_scores, "nonmember_scores")
    labels = np.concatenate([np.ones(mem.size), np.zeros(non.size)])
    return float(roc_auc_score(labels, np.concatenate([mem, non])))


def privleak(auc_model: float, auc_retain: float) -> float:
    """MUSE PrivLeak from two :func:`mia_auc` values (our convention, members = forget = 1).

    MUSE's AUC is ``1 - mia_auc``, so this returns ((1 - a_m) - (1 - a_r)) / (1 - a_r) * 100, the
    number MUSE and open-unlearning report. 0 = like the retrained model; strongly negative
    (towards -100) = under-unlearning, the forget set is still recognisable; positive =
    over-unlearning, the forget set looks less familiar than it would to a retrained model.

    Args:
        auc_model: :func:`mia_auc` of the evaluated model (forget vs holdout, Min-K% k=0.4).
        auc_retain: the same for the retrained model. MUSE's constants are in its convention:
            News 0.4772 -> pass 0.5228, Books 0.5393 -> pass 0.4607. Without one, 0.5.
    """
    for name, a in (("auc_model", auc_model), ("auc_retain", auc_retain)):
        if not 0.0 <= a <= 1.0:
            raise DataError(f"{name} must be an AUC in [0, 1], got {a}.")
    if auc_retain == 1.0:
        raise DataError(
            "auc_retain = 1 gives MUSE AUC 0 and divides by zero; check the retain run."
        )
    return ((1.0 - auc_model) - (1.0 - auc_retain)) / (1.0 - auc_retain) * 100.0


# ------------------------------------------------------------- memorization --------------------


def _id_pair(pred_ids: ArrayLike, label_ids: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of equal-length, non-empty 1-D integer id arrays."""
    pred = _vector(pred_ids, "pred_ids", dtype=np.int64)
    label = _vector(label_ids, "label_ids", dtype=np.int64)
    if pred.shape != label.shape:
        raise DataError(
            f"pred_ids has {pred.size} tokens but label_ids has {label.size}; pass the "
            "teacher-forced argmax at the positions that predict each answer token."
        )
    return pred, label


def extraction_strength(pred_ids: ArrayLike, label_ids: ArrayLike) -> float:
    """Extraction strength ES = 1 - k*/|y|.

    k* is the smallest prefix length after which the teacher-forced argmax ``pred_ids`` matches
    every remaining label: all match -> k* = 0, ES = 1; last token wrong -> k* = |y|, ES = 0.
    open-unlearning's loop stops at k = |y| - 1 and so gives 1/|y| instead of 0 in that case.
    """
    pred, label = _id_pair(pred_ids, label_ids)
    wrong = np.flatnonzero(pred != label)
    k_star = int(wrong[-1]) + 1 if wrong.size else 0
    return 1.0 - k_star / label.size


def exact_memorization(pred_ids: ArrayLike, label_ids: ArrayLike) -> float:
    """Exact memorization EM: fraction of answer tokens whose teacher-forced argmax is the label."""
    pred, label = _id_pair(pred_ids, label_ids)
    return float((pred == label).mean())


# ------------------------------------------------------------ generation -----------------------


def ngram_entropy(text: str, n: int) -> float:
    """Shannon entropy (bits) of the n-gram frequency distribution of ``text``.

    Tokens are words and single punctuation marks (regex ``\\w+|[^\\w\\s]``), close to the
    ``nltk.word_tokenize`` of ROME/RWKU without needing nltk data (contractions split
    differently). A text with fewer than ``n`` tokens has entropy 0, as in ROME.
    """
    if n < 1:
        raise ConfigError(f"n-gram order must be >= 1, got {n}.")
    tokens = _WORD_RE.findall(text)
    counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    if not counts:
        return 0.0
    freqs = np.fromiter(counts.values(), dtype=np.float64)
    freqs /= freqs.sum()
    return float(-(freqs * np.log2(freqs)).sum())


def weighted_ngram_entropy(text: str) -> float:
    """ROME/RWKU per-text fluency: mean_n(w_n * H_n) = (2/3*H2 + 4/3*H3) / 2 = H2/3 + 2*H3/3.

    ROME's ``compute_n_gram_entropy`` multiplies the entropies by weights (2/3, 4/3) and then
    takes their arithmetic mean, hence the division by the number of orders.
    """
    weighted = [w * ngram_entropy(text, n) for n, w in zip(FLUENCY_NS, FLUENCY_WEIGHTS)]
    return float(np.mean(weighted))


def fluency(texts: Sequence[str]) -> float:
    """RWKU "Flu": mean over texts of :func:`weighted_ngram_entropy`; low = repetitive output."""
    if isinstance(texts, str) or len(texts) == 0:
        raise DataError("fluency needs a non-empty list of generated texts, not a single string.")
    return float(np.mean([weighted_ngram_entropy(t) for t in texts]))


def mcq_accuracy(choice_scores: Sequence[Sequence[float]], answers: Sequence[int]) -> float:
    """Fraction of questions whose highest-scoring choice is the answer (ties: first choice).

    Args:
        choice_scores: one row per question, one score (e.g. log-probability) per choice.
        answers: index of the correct choice for each question.
    """
    if len(choice_scores) == 0 or len(choice_scores) != len(answers):
        raise DataError(
            f"got {len(choice_scores)} score rows and {len(answers)} answers; "
            "pass one row and one answer index per question."
        )
    correct = 0
    for i, (row, ans) in enumerate(zip(choice_scores, answers)):
        scores = _vector(row, f"choice_scores[{i}]")
        if not 0 <= ans < scores.size:
            raise DataError(
                f"answers[{i}] = {ans} is not a valid index into {scores.size} choices."
            )
        correct += int(np.argmax(scores)) == int(ans)
    return correct / len(answers)


def truncate_at_stop(text: str, stops: Sequence[str] = MUSE_KNOWMEM_STOPS) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string (the stop itself is dropped)."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut]
