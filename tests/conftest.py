"""Shared fixtures: the tiny model trained once per session on the fictional facts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tests run one at a time on tiny models, whose many small kernels run faster with OpenMP's
# spinning threads (bench/shared_cores.py: 2.9 s vs 5.1 s passive); the processes tests start
# inherit this. (obliviate.runtime's passive policy is opt-in, OBLIVIATE_THREADS=shared.)
os.environ.setdefault("OBLIVIATE_THREADS", "torch")

from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models gain nothing from a second thread, and on a shared 2-core machine one thread per
# test process avoids oversubscription (measured 1.5-2.5x faster steps under load).
torch.set_num_threads(1)


@contextmanager
def all_cores() -> Iterator[None]:
    """Use every core (at most 2) for a long, single training job such as the tiny fine-tunes.

    The tests run one at a time, so while one trains nothing competes: 2 threads trained the tiny
    model 1.8x faster than 1 here. The thread count goes back to 1 afterwards.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture()
def two_threads() -> Iterator[None]:
    """:func:`all_cores` for one test."""
    with all_cores():
        yield

# Small but real: 20 people (2 forget, 16 retain, 2 holdout), 10 facts each.
TINY_PEOPLE = 20
TINY_RECIPE = {"lr": 3e-3, "epochs": 30, "batch_size": 16, "schedule": "cosine", "warmup": 0.1, "weight_decay": 0.0, "max_length": 96, "bf16": "off"}


@dataclass
class Trained:
    """A tiny model's trained weights with what it was trained on."""

    state: dict[str, Any]
    tokenizer: Any
    task: Any
    log: list[dict[str, float]]

    def model(self) -> Any:
        """A fresh tiny model holding the trained weights (tests may modify it freely)."""
        from obliviate.models import load_model

        m = load_model("tiny").model
        m.load_state_dict(self.state)
        m.eval()
        return m


def _train_tiny(records_of: str) -> Trained:

    from obliviate.benchmarks.fictional import build_fictional
    from obliviate.data.formatting import PromptFormatter, make_collate, sft_items
    from obliviate.methods.base import sft_loss
    from obliviate.models import load_model
    from obliviate.training.loop import TrainConfig, train

    task = build_fictional(n_people=TINY_PEOPLE)
    lm = load_model("tiny")
    records = task.forget + task.retain if records_of == "all" else task.retain
    items = sft_items(records, PromptFormatter(lm.tokenizer), TINY_RECIPE["max_length"])
    with all_cores():
        result = train(
            lm.model, sft_loss, items, make_collate(lm.tokenizer.pad_token_id), TrainConfig(**TINY_RECIPE), progress=False
        )
    state = {k: v.detach().clone() for k, v in lm.model.state_dict().items()}
    return Trained(state, lm.tokenizer, task, result.log)


@pytest.fixture(scope="module")
def tiny() -> Any:
    """The untrained tiny model (module-scoped: tests may read it, not change it)."""
    from obliviate.models import load_model

    return load_model("tiny")


@pytest.fixture(scope="module")
def task() -> Any:
    """The default fictional task."""
    from obliviate.benchmarks.fictional import build_fictional

    return build_fictional()


@pytest.fixture(scope="session")
def tiny_trained() -> Trained:
    """The tiny model fine-tuned on forget + retain of a 20-person fictional task (the target)."""
    return _train_tiny("all")


@pytest.fixture(scope="session")
def tiny_retain_trained() -> Trained:
    """The tiny model fine-tuned on the retain split only (the retain-only oracle)."""
    return _train_tiny("retain")


@pytest.fixture(autouse=True, scope="session")
def every_run_record_follows_the_published_schema() -> Iterator[None]:
    """Every run.json a test writes (any run kind) is validated against docs/run.schema.json as it is written."""
    import json
    from pathlib import Path

    import jsonschema

    from obliviate.record import store

    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "run.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    original = store.save_run

    def checked(path: Any, data: Any, *, schema: int = store.SCHEMA_VERSION) -> Any:
        written = original(path, data, schema=schema)
        if written.name == store.RUN_FILE:
            errors = sorted(validator.iter_errors(json.loads(written.read_text())), key=lambda e: list(e.path))
            if errors:
                where = "/".join(map(str, errors[0].path))
                raise AssertionError(f"{written} does not follow docs/run.schema.json at {where}: {errors[0].message}")
        return written

    store.save_run = checked
    try:
        yield
    finally:
        store.save_run = original
