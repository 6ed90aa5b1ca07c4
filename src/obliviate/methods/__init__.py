"""Training-based unlearning methods (one file each) and their pure loss functions (losses.py).

:data:`METHODS` registers every method lazily as ``"module:Class"`` with its one-line help, so
``obliviate ls methods`` imports neither the method modules nor torch. A method module is imported
when its method is first looked up (``METHODS.get(name)``); the class carries its registered name
as the ``name`` class attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from obliviate.registry import Registry

if TYPE_CHECKING:
    from obliviate.methods.base import UnlearnMethod

_ENTRIES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    # name, module:class, aliases, one-line help
    (
        "flat",
        "flat:FLAT",
        (),
        "Loss adjustment with an f-divergence between template and forget answers",
    ),
    (
        "ga",
        "ga:GA",
        ("grad_ascent", "gradient_ascent"),
        "Gradient ascent: maximise the forget-set NLL (TOFU baseline)",
    ),
    (
        "grad_diff",
        "grad_diff:GradDiff",
        ("graddiff", "gd"),
        "Gradient difference: ascent on forget answers, descent on retain NLL or KL (TOFU)",
    ),
    (
        "idk_dpo",
        "idk_dpo:IdkDPO",
        ("idkdpo", "dpo"),
        "DPO preferring a refusal template over the true forget answer, plus retain NLL",
    ),
    (
        "idk_sft",
        "idk_sft:IdkSFT",
        ("idk",),
        'Fine-tune forget questions onto refusal templates, plus retain NLL (TOFU "idk")',
    ),
    (
        "ihl",
        "ihl:IHL",
        (),
        "Inverted hinge loss + retain NLL; with --lora.enabled true --lora.init fila it is LoKU",
    ),
    (
        "kl",
        "kl:KL",
        ("ga_kl", "ga_klr"),
        'Gradient ascent on forget answers + KL to the original model on retain inputs (TOFU "KL")',
    ),
    (
        "npo",
        "npo:NPO",
        (),
        "Negative Preference Optimization with cached reference log-probs; retain none, nll or kl",
    ),
    (
        "rmu",
        "rmu:RMU",
        (),
        "Steer block ℓ's activations on forget inputs to a random vector; "
        "hold them on retain inputs"
    ),
    (
        "simnpo",
        "simnpo:SimNPO",
        (),
        "SimNPO: reference-free length-normalised NPO plus retain NLL (Fan et al. 2024)",
    ),
    (
        "task_vector",
        "task_vector:TaskVector",
        ("tv", "task_arithmetic"),
        "Fine-tune on the forget set, then negate the change (task arithmetic)",
    ),
    (
        "wagle",
        "wagle:WAGLE",
        (),
        "A base method's loss, trained only on the weights weight attribution selects",
    ),
)

METHODS: Registry[type[UnlearnMethod]] = Registry(
    "method", base="obliviate.methods.base:UnlearnMethod"
)
for _name, _target, _aliases, _help in _ENTRIES:
    METHODS.add(_name, f"obliviate.methods.{_target}", aliases=_aliases, help=_help)

__all__ = ["METHODS"]
