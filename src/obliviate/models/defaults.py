"""Per-model settings of ``obliviate prepare``, keyed by registered model name.

- :data:`TRAIN_DEFAULTS`: the fine-tuning recipe (TrainConfig fields): how fast a model of that
  size memorizes the fictional facts; :data:`GENERIC_TRAIN_DEFAULTS` for any other model.
- :data:`PREPARE_DEFAULTS`: other PrepareConfig settings.

Benchmark sizes suited to a model are the benchmark's own (``BenchmarkSpec.model_defaults``).
"""

from __future__ import annotations

from typing import Any

TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny": {
        "lr": 3e-3,
        "epochs": 30,
        "batch_size": 16,
        "schedule": "cosine",
        "warmup": 0.1,
        "max_length": 96,
        "weight_decay": 0.0,
        "bf16": "off",
    },
    # 18 people x 6 epochs at 6e-4 in batches of 16 memorizes both splits within the prepare budget.
    "smollm2-135m": {"lr": 6e-4, "epochs": 6, "batch_size": 16, "warmup": 0.05, "max_length": 128},
}
PREPARE_DEFAULTS: dict[str, dict[str, Any]] = {
    "smollm2-135m": {"rehearsal": 80, "freeze_embeddings": True, "freeze_layers": 15}
}
GENERIC_TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 1e-5,
    "epochs": 5,
    "batch_size": 8,
    "warmup": 0.1,
    "max_length": 256,
}


def _for_model(
    table: dict[str, dict[str, Any]], model: str, default: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A copy of ``table``'s entry for a registered model name or alias (``default`` otherwise)."""
    from obliviate.models.registry import MODELS

    key = MODELS.canonical(model) if model in MODELS else ""
    return dict(table.get(key, default or {}))


def train_defaults(model: str) -> dict[str, Any]:
    """The fine-tuning recipe for a model name (a generic one for other models)."""
    return _for_model(TRAIN_DEFAULTS, model, GENERIC_TRAIN_DEFAULTS)


def prepare_defaults(model: str) -> dict[str, Any]:
    """Model-specific PrepareConfig settings other than the recipe and the benchmark."""
    return _for_model(PREPARE_DEFAULTS, model)
