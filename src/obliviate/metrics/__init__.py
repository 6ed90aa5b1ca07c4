"""Evaluation metrics: memorization, privacy (membership inference, forget
quality, privleak), utility.

Each entry of :data:`METRICS` is a :class:`~obliviate.metrics.base.Metric` subclass, registered
lazily so that ``obliviate ls metrics`` imports nothing heavy. A metric bound to a split is named
``SPLIT/NAME`` in plans and in run.json (``forget/rouge``); corpus-level metrics have no split
(``forget_quality``). Names and one-line descriptions are written once, in :data:`_ENTRIES`: a
metric class's ``description`` is its entry's help line (:class:`RegisteredDescription`), unless the
class computes one that depends on its split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from obliviate.registry import Registry

if TYPE_CHECKING:
    from obliviate.metrics.base import Metric

METRICS: Registry[type[Metric]] = Registry("metric", base="obliviate.metrics.base:Metric")


class RegisteredDescription:
    """Class-attribute descriptor: a metric's ``description`` is the help of its registry entry."""

    def __get__(self, obj: Any, owner: type) -> str:
        name = getattr(owner, "name", "")
        return METRICS.help(name) if name and name in METRICS else ""


_ENTRIES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    # name, module:class, aliases, one-line help
    (
        "prob",
        "memorization:Prob",
        (),
        "probability of the right answer per token, exp(mean log p) (TOFU Prob)",
    ),
    (
        "rouge",
        "memorization:Rouge",
        ("rouge_l",),
        "ROUGE-L recall of the model's greedy answer against the true answer (TOFU)",
    ),
    (
        "truth_ratio",
        "memorization:TruthRatio",
        (),
        "TOFU truth ratio: wrong vs true answer likelihood (forget: min(R, "
        "1/R); else max(0, 1 - R))",
    ),
    (
        "extraction_strength",
        "memorization:ExtractionStrength",
        ("es",),
        "1 - (shortest answer prefix after which the model completes the rest) / length (end "
        "token left out, open-unlearning)",
    ),
    (
        "exact_memorization",
        "memorization:ExactMemorization",
        ("em",),
        "share of answer tokens that are the model's top prediction given the true prefix (end "
        "token left out, open-unlearning)",
    ),
    (
        "verbmem",
        "memorization:VerbMem",
        (),
        "ROUGE-L F1 of the model's continuation of a text against the true continuation (MUSE)",
    ),
    (
        "knowmem",
        "memorization:KnowMem",
        (),
        "ROUGE-L F1 of the model's few-shot answer against the true answer (MUSE)",
    ),
    (
        "mia_loss",
        "privacy:LossAttack",
        ("loss",),
        "AUROC of the LOSS membership attack, forget vs holdout (0.5 = forgotten)",
    ),
    (
        "mia_zlib",
        "privacy:ZlibAttack",
        ("zlib",),
        "AUROC of the zlib membership attack, forget vs holdout (0.5 = forgotten)",
    ),
    (
        "mia_min_k",
        "privacy:MinKAttack",
        ("min_k",),
        "AUROC of the Min-K% membership attack, forget vs holdout (0.5 = "
        "forgotten; QA end token left out)",
    ),
    (
        "mia_min_k_pp",
        "privacy:MinKPlusPlusAttack",
        ("min_k_pp",),
        "AUROC of the Min-K%++ membership attack, forget vs holdout (0.5 = "
        "forgotten; QA end token left out)",
    ),
    (
        "mia_reference",
        "privacy:ReferenceAttack",
        ("reference",),
        "AUROC of the reference membership attack (needs --reference), forget vs holdout",
    ),
    (
        "mia_gradnorm",
        "privacy:GradNormAttack",
        ("gradnorm",),
        "AUROC of the gradient-norm attack on the first eval.gradnorm_items (32) of each side "
        "(0.5 = forgotten; QA end token left out)",
    ),
    (
        "forget_quality",
        "privacy:ForgetQuality",
        ("fq",),
        "p-value that forget truth ratios match the retain-only model's (TOFU; high = forgotten)",
    ),
    (
        "privleak",
        "privacy:PrivLeak",
        (),
        "relative gap (%) between this model's and the retain-only model's "
        "Min-K% AUC (MUSE; 0 = same)",
    ),
    (
        "model_utility",
        "utility:ModelUtility",
        ("mu",),
        "harmonic mean of Prob, ROUGE-L and truth ratio on retain, real "
        "authors, world facts (TOFU)",
    ),
    (
        "fluency",
        "utility:Fluency",
        (),
        "n-gram entropy of the model's answers (ROME/RWKU); low means repetitive or degenerate",
    ),
    (
        "mcq_accuracy",
        "utility:MCQAccuracy",
        (),
        "share of multiple-choice questions whose most likely choice letter is right",
    ),
)

for _name, _target, _aliases, _help in _ENTRIES:
    METRICS.add(_name, f"obliviate.metrics.{_target}", aliases=_aliases, help=_help)

DIFFERENCES: tuple[str, ...] = (
    "mia_zlib: the zlib length is that of the answer as written (UTF-8), where open-unlearning "
    "compresses the decoded tokens with a leading space; the AUC moves by at most 0.002.",
    "extraction_strength: an answer whose last token is wrong scores 0 (k* = |y|), as the "
    "definition has it, where open-unlearning's loop stops at k = |y| - 1 and gives 1/|y|.",
)
"""Where obliviate's metric definitions differ from open-unlearning's on purpose (printed by
``obliviate ls metrics``)."""

__all__ = ["DIFFERENCES", "METRICS", "RegisteredDescription"]
