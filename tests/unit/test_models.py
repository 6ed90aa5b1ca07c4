"""Models: the tiny model's determinism, atomic save and load, and refusing to overwrite."""

from __future__ import annotations

import pytest
import torch

from obliviate.errors import ModelError, OutputExistsError
from obliviate.models import load_model, save_model
from obliviate.models.io import resolve_model
from obliviate.runs.checks import check_output


def test_tiny_is_deterministic():
    a, b = load_model("tiny").model, load_model("tiny").model
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    tok = load_model("tiny", tokenizer_only=True).tokenizer
    assert 900 <= len(tok) <= 1100 and tok.pad_token_id == tok.eos_token_id


def test_save_load_round_trip(tmp_path):
    lm = load_model("tiny")
    with torch.no_grad():
        next(lm.model.parameters()).add_(0.5)  # not the fresh init
    out = save_model(lm.model, lm.tokenizer, tmp_path / "m")
    assert (out / "model.safetensors").is_file() and not list(tmp_path.glob(".m.tmp-*"))
    back = load_model(out)
    s1, s2 = lm.model.state_dict(), back.model.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    ids = lm.tokenizer("Question: who?", return_tensors="pt")["input_ids"]
    assert torch.equal(lm.model(ids).logits, back.model(ids).logits)
    assert back.tokenizer("Question: who?")["input_ids"] == ids[0].tolist()


def test_save_refuses_to_overwrite_and_never_writes_into_the_input(tmp_path):
    lm = load_model("tiny")
    out = save_model(lm.model, lm.tokenizer, tmp_path / "m")
    before = (out / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="--overwrite"):
        save_model(lm.model, lm.tokenizer, out)
    assert (out / "model.safetensors").stat().st_mtime_ns == before
    with pytest.raises(OutputExistsError, match="is the input folder .* never writes into its inputs"):
        check_output(out / "sub", (out,))
    save_model(lm.model, lm.tokenizer, out, overwrite=True)


def test_bad_model_specs_fail_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        resolve_model("someorg/somemodel")
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(tmp_path)
    with pytest.raises(ModelError, match="registered model"):
        resolve_model("./does/not/exist")


def test_model_folders_that_cannot_load_are_named_before_loading(tmp_path, monkeypatch):
    """A typo of an existing folder, pickled weights, no weights, no tokenizer: each refused from
    the folder's file names, with what to do; none is read as a hub id or reaches transformers."""
    import shutil

    import transformers

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lm = load_model("tiny")
    good = save_model(lm.model, lm.tokenizer, tmp_path / "prep" / "target")

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a tokenizer or weights were loaded before the folder was checked")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_loading)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_loading)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=r"^model folder prep/targett does not exist; "
                                         r"did you mean prep/target\?"):
        load_model("prep/targett")  # org/name in form, but prep/ is a folder here
    with pytest.raises(ModelError, match=r"HF_HUB_OFFLINE"):  # nothing close: still a hub id
        resolve_model("prep/other_model")

    def variant(name: str, *drop: str) -> object:
        folder = tmp_path / name
        shutil.copytree(good, folder)
        for file in drop:
            (folder / file).unlink()
        return folder

    pickled = variant("pickled", "model.safetensors")
    (pickled / "pytorch_model.bin").write_bytes(b"never unpickled")
    (pickled / "training_args.bin").write_bytes(b"never unpickled")
    with pytest.raises(ModelError, match=(
        r"weights only as pickled pytorch_model.bin and no \*.safetensors file.*refuses pickled "
        r"weights on purpose.*save_pretrained\(new_folder, safe_serialization=True\)"
    )):
        load_model(pickled)
    with pytest.raises(ModelError, match=r"holds no model weights: no \*.safetensors file"):
        load_model(variant("noweights", "model.safetensors"))
    assert resolve_model(tmp_path / "noweights", weights=False) == tmp_path / "noweights"
    notok = variant("notok", "tokenizer.json", "tokenizer_config.json")
    with pytest.raises(ModelError, match=r"has no tokenizer: tokenizer.json and "
                                         r"tokenizer_config.json are missing.*saved beside"):
        load_model(notok, tokenizer_only=True)
    with pytest.raises(ModelError, match=r"has no tokenizer: tokenizer.json is missing"):
        resolve_model(variant("novocab", "tokenizer.json"))
    # tokenizer_config.json alone may be absent: tokenizer.json is the tokenizer
    assert resolve_model(variant("noconfig", "tokenizer_config.json")) == tmp_path / "noconfig"


def test_default_device_is_this_process_s_gpu_or_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from obliviate.models.io import default_device, load_model

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert default_device() == "cuda:1"  # one GPU per launched process
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert default_device() == "cuda:1"  # more processes than GPUs share them
    monkeypatch.delenv("LOCAL_RANK")
    assert default_device() == "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert default_device() == "cpu"
    assert next(load_model("tiny", device="cpu").model.parameters()).device.type == "cpu"
