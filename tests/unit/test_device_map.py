"""A model larger than one device: evaluation with ``eval.device_map`` (accelerate's big-model loading).

This machine has only a CPU, so the test makes the model "too large" for it: a memory limit of
6 MB keeps the tiny model's embedding and head in memory and offloads its decoder layers to
disk, to be loaded by accelerate's hooks layer by layer during every forward pass. The numbers
must be the single-device evaluation's exactly (the same weights and kernels, run piecewise);
GradNorm, which needs every weight's gradient, is skipped with its reason.
"""

from __future__ import annotations

from typing import Any

import pytest

import obliviate as ob
from obliviate.errors import ConfigError

KEYS = "forget/rouge,forget/prob,forget/truth_ratio,retain/prob,forget/mia_gradnorm"


def test_an_offloaded_model_evaluates_as_one_on_a_single_device(tiny_trained: Any, tmp_path: Any) -> None:
    from obliviate.models.io import save_model

    save_model(tiny_trained.model(), tiny_trained.tokenizer, tmp_path / "m")
    opts = {"max_items": 8, "max_new_tokens": 12, "gradnorm_items": 4}
    whole = ob.evaluate(tmp_path / "m", tiny_trained.task, metrics=KEYS, options=opts, out=tmp_path / "one")
    spread = ob.evaluate(
        tmp_path / "m", tiny_trained.task, metrics=KEYS, out=tmp_path / "map",
        options={**opts, "device_map": "auto", "max_memory": "cpu=6MB"},
    )
    placed = spread.data["eval"]["placement"]
    assert placed.get("disk", 0) >= 1 and placed.get("cpu", 0) >= 1, placed  # really split: memory and disk
    assert whole.data["eval"]["placement"] == {"cpu": 1}
    for key in ("forget/rouge", "forget/prob", "forget/truth_ratio", "retain/prob"):
        assert spread.per_item(key) == whole.per_item(key), key
    assert spread.all_generations == whole.all_generations
    assert "forget/mia_gradnorm" in whole.metrics
    assert "offloaded" in spread.skipped["forget/mia_gradnorm"]
    assert not list(tmp_path.glob("**/*.dat"))  # the offloaded weights went to a temporary folder, now gone


def test_device_map_options_are_checked_before_the_model_loads(tiny: Any) -> None:
    with pytest.raises(ConfigError, match="set --eval.device_map auto too"):
        ob.evaluate("tiny", "fictional", metrics="forget/prob", options={"max_memory": "cpu=1GB"})
    with pytest.raises(ConfigError, match="DEVICE=SIZE"):
        ob.evaluate("tiny", "fictional", metrics="forget/prob", options={"device_map": "auto", "max_memory": "cpu:1GB"})
    with pytest.raises(ConfigError, match="DEVICE=SIZE"):
        ob.evaluate("tiny", "fictional", metrics="forget/prob", options={"device_map": "auto", "max_memory": "gpu=1GB"})
    with pytest.raises(ConfigError, match="a loaded model"):
        ob.evaluate(tiny, "fictional", metrics="forget/prob", options={"device_map": "auto"})
    with pytest.raises(ConfigError, match="not one of"):
        ob.evaluate("tiny", "fictional", metrics="forget/prob", options={"device_map": "everywhere"})
