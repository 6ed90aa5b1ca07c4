"""Attacks that test whether forgetting holds: each changes the model or the prompts, then the
benchmark's own metrics run again (one file per family).

:data:`ATTACKS` registers every attack lazily as ``"module:Class"`` with its one-line help, so
``obliviate ls attacks`` imports neither torch nor the attack modules. :data:`BATTERY` is the
standard battery ``obliviate attack --all`` runs: each entry an attack name and its options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from obliviate.registry import Registry

if TYPE_CHECKING:
    from obliviate.attacks.base import Attack

_ENTRIES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    # name, module:class, aliases, one-line help
    (
        "relearn",
        "relearn:Relearn",
        ("relearning",),
        "Fine-tune on a few forget items (or retain text), then score the held-back forget items",
    ),
    (
        "quantize",
        "quantize:Quantize",
        ("quantization",),
        "Reload the model at 4 or 8 bits with bitsandbytes (Zhang et al. 2025) and score again",
    ),
    (
        "rephrase",
        "prompts:Rephrase",
        ("paraphrase",),
        "Ask the forget questions in other words (the benchmark's paraphrased "
        "questions, else templates)",
    ),
    (
        "few_shot",
        "prompts:FewShot",
        ("fewshot",),
        "Precede each forget question with k solved retain questions (k = 5)",
    ),
    (
        "adversarial",
        "prompts:Adversarial",
        ("jailbreak",),
        "RWKU's level-3 adversarial probe types as prompt transforms (prefix "
        "injection, role play, ...)",
    ),
    (
        "in_context",
        "prompts:InContext",
        ("ununlearning",),
        "Put the forgotten fact itself in the prompt, beside the retain-only model "
        "given the same (UnUnlearning)",
    ),
    (
        "probe",
        "probe:LogitLens",
        ("logit_lens",),
        "White box: is the answer's first token in the top k of any layer's logit-lens readout?",
    ),
    (
        "linear_probe",
        "linear_probe:LinearProbe",
        ("probe_linear",),
        "White box: can a linear probe on hidden states tell each forget fact's "
        "true answer from wrong ones?",
    ),
)

ATTACKS: Registry[type[Attack]] = Registry("attack", base="obliviate.attacks.base:Attack")
for _name, _target, _aliases, _help in _ENTRIES:
    ATTACKS.add(_name, f"obliviate.attacks.{_target}", aliases=_aliases, help=_help)

BATTERY: tuple[tuple[str, dict[str, Any]], ...] = (
    ("relearn", {}),
    ("quantize", {"bits": 4}),
    ("quantize", {"bits": 8}),
    ("rephrase", {}),
    ("few_shot", {}),
    ("adversarial", {}),
    ("in_context", {}),
    ("probe", {}),
    ("linear_probe", {}),
)
"""The standard battery (``obliviate attack --all``), in the order it runs."""

__all__ = ["ATTACKS", "BATTERY"]
