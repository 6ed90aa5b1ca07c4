"""Quantization attack: reload the model at 4 or 8 bits and score the forget set again.

After Zhang et al., "Catastrophic Failure of LLM Unlearning via Quantization" (ICLR 2025; code
``zzwjames/FailureLLMUnlearning``, ``utils.py:load_model``). Unlearning that keeps utility moves
weights by less than a quantization bin, so the unlearned and the original weights round to the
same grid points and the forgotten answers come back.

The reference loads the model with transformers' ``BitsAndBytesConfig``:

- 4 bits: ``BitsAndBytesConfig(load_in_4bit=True)`` and ``torch_dtype=bfloat16``, so fp4 codes,
  block size 64, no double quantization, ``bnb_4bit_compute_dtype=float32`` (bitsandbytes'
  default), and the modules left unquantized (``lm_head``, embeddings, norms) in bf16;
- 8 bits: ``BitsAndBytesConfig(load_in_8bit=True)`` with no dtype (LLM.int8 with the outlier
  threshold 6.0), so the unquantized modules keep the checkpoint's dtype.

:class:`QuantizeConfig`'s defaults reproduce both. The copy is saved with obliviate's own
:func:`~obliviate.models.io.save_model` into a temporary folder, reloaded quantized on the CPU
(``device_map="auto"`` when CUDA is available), and the folder is deleted: every tensor that
transformers memory-mapped from it is copied into memory first, so the returned model needs no
file. The model under attack is never changed.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from obliviate.attacks.base import Attack, AttackContext, Attacked
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError
from obliviate.types import Model

log = logging.getLogger(__name__)

BNB_INSTALL = "pip install bitsandbytes"


@dataclass
class QuantizeConfig:
    """Options of the quantization attack (``--quantize.<field>``)."""

    bits: Literal[4, 8] = 4  # 4: bitsandbytes 4-bit (fp4/nf4); 8: LLM.int8 (Zhang et al. run both)
    scheme: Literal["fp4", "nf4"] = "fp4"  # 4-bit code (the reference's default is fp4); ignored at 8 bits
    compute_dtype: Literal["fp32", "bf16"] = "fp32"  # 4-bit matmul dtype (bnb_4bit_compute_dtype; the reference: fp32); ignored at 8 bits
    dtype: Literal["auto", "bf16", "fp32"] = "auto"  # unquantized modules (lm_head, embeddings, norms); auto: as the reference, bf16 at 4 bits, the checkpoint's dtype at 8 bits
    double_quant: bool = False  # 4-bit: quantize the block scales too (bnb_4bit_use_double_quant; the reference: off)

    def validate(self) -> None:
        """Raise ConfigError on values that cannot work, before any model loads."""
        if self.bits not in (4, 8):
            raise ConfigError(f"quantize.bits must be 4 or 8, got {self.bits!r}")
        if self.scheme not in ("fp4", "nf4"):
            raise ConfigError(f"quantize.scheme must be fp4 or nf4, got {self.scheme!r}")
        if self.compute_dtype not in ("fp32", "bf16"):
            raise ConfigError(
                f"quantize.compute_dtype must be fp32 or bf16, got {self.compute_dtype!r}"
            )
        if self.dtype not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"quantize.dtype must be auto, bf16 or fp32, got {self.dtype!r}")


def require_bitsandbytes() -> Any:
    """Import bitsandbytes, or say how to install it."""
    try:
        import bitsandbytes
    except Exception as e:  # ImportError, or a broken install raising at import
        raise ConfigError(
            f"the quantize attack needs bitsandbytes ({type(e).__name__}: {e}); {BNB_INSTALL} "
            "(0.46.1 or newer; it runs on the CPU too)"
        ) from e
    return bitsandbytes


def bnb_linear_types() -> tuple[type, ...]:
    """bitsandbytes' quantized Linear classes (4-bit and 8-bit)."""
    import bitsandbytes as bnb

    return (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)


def quantized_modules(model: Model) -> tuple[list[str], list[str]]:
    """Names of a model's bitsandbytes Linear modules, and of its Linear modules left
    in full precision."""
    import torch

    kinds = bnb_linear_types()
    quantized, skipped = [], []
    for name, module in model.named_modules():
        if isinstance(module, kinds):
            quantized.append(name)
        elif isinstance(module, torch.nn.Linear):
            skipped.append(name)
    return quantized, skipped


class _Int8CastFilter(logging.Filter):
    """Drops bitsandbytes' per-call "MatMul8bitLt: inputs will be cast ... to float16"
    warning after the first."""

    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("MatMul8bitLt: inputs will be cast"):
            return True
        first, type(self).seen = not type(self).seen, True
        return first


def _quiet_int8_cast_warning() -> None:
    """bitsandbytes logs one warning per 8-bit matmul on fp32/bf16 inputs; keep the first only."""
    logger = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _Int8CastFilter) for f in logger.filters):
        logger.addFilter(_Int8CastFilter())


def _detach_from_files(model: Model) -> None:
    """Copy into memory every parameter and buffer that is not a bitsandbytes weight.

    transformers memory-maps a safetensors tensor whose dtype and device it keeps (8 bits, the
    unquantized modules); the copy lets the temporary folder go on every platform. Tied weights
    stay tied: the same Parameter object gets the new data.
    """
    import bitsandbytes as bnb

    quantized = (bnb.nn.Params4bit, bnb.nn.Int8Params)
    for param in model.parameters():
        if not isinstance(param, quantized):
            param.data = param.data.clone()
    for module in model.modules():
        for name, buf in list(module._buffers.items()):
            if buf is not None:
                module._buffers[name] = buf.clone()


def _unwrapped(model: Model) -> Any:
    """The model to save: a peft model's LoRA weights are merged into a copy
    (``model`` is left alone)."""
    if hasattr(model, "merge_and_unload") and hasattr(model, "peft_config"):
        return copy.deepcopy(model).merge_and_unload()
    return model


class Quantize(Attack):
    """Reload the model quantized by bitsandbytes (4-bit fp4 or nf4, or 8-bit LLM.int8)
    and evaluate it again.

    ``apply`` returns the quantized copy as a :class:`~obliviate.models.io.LoadedModel` (same
    tokenizer and recorded meta, so the prompt format is kept; ``path`` is None, as the folder it
    was loaded from is gone) and the task unchanged.
    """

    name: ClassVar[str] = "quantize"
    kind: ClassVar[str] = "weights"  # type: ignore[assignment]
    config_cls: ClassVar[type] = QuantizeConfig

    config: QuantizeConfig

    @property
    def label(self) -> str:
        """``quantize-4bit`` or ``quantize-8bit``."""
        return f"quantize-{self.config.bits}bit"

    def check(self, task: UnlearningTask) -> None:
        """Any task will do (QA or text): only bitsandbytes must be importable, checked
        before any model loads."""
        require_bitsandbytes()

    def quantization_config(self) -> Any:
        """The transformers ``BitsAndBytesConfig`` these options mean."""
        import torch
        from transformers import BitsAndBytesConfig

        c = self.config
        if c.bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=c.scheme,
            bnb_4bit_compute_dtype=torch.float32 if c.compute_dtype == "fp32" else torch.bfloat16,
            bnb_4bit_use_double_quant=c.double_quant,
        )

    def _dtype(self) -> Any:
        import torch

        if self.config.dtype == "auto":
            return torch.bfloat16 if self.config.bits == 4 else "auto"
        return torch.bfloat16 if self.config.dtype == "bf16" else torch.float32

    def apply(self, ctx: AttackContext) -> Attacked:
        """Save a copy of ``ctx.model``, reload it quantized, and hand it back with
        the task unchanged."""
        bnb = require_bitsandbytes()
        import torch
        import transformers
        from transformers import AutoModelForCausalLM

        from obliviate.models.io import LoadedModel, save_model

        transformers.utils.logging.disable_progress_bar()
        loaded = ctx.model
        device_map = "auto" if torch.cuda.is_available() else "cpu"
        with tempfile.TemporaryDirectory(
            prefix="obliviate-quantize-", ignore_cleanup_errors=True
        ) as tmp:
            folder = Path(tmp) / "model"
            save_model(_unwrapped(loaded.model), loaded.tokenizer, folder)
            try:
                model = AutoModelForCausalLM.from_pretrained(
                    folder, quantization_config=self.quantization_config(), device_map=device_map,
                    dtype=self._dtype(), use_safetensors=True,
                )
            except (ImportError, RuntimeError, ValueError) as e:
                raise ConfigError(
                    f"bitsandbytes could not quantize {loaded.source} to {self.config.bits} bits "
                    f"on {device_map} ({e}); check the install ({BNB_INSTALL}, 0.46.1 or newer) "
                    "and that the model's Linear layers are plain nn.Linear"
                ) from e
            _detach_from_files(model)
        model.eval()
        if self.config.bits == 8:
            _quiet_int8_cast_warning()
        quantized, skipped = quantized_modules(model)
        if not quantized:
            raise ConfigError(
                f"bitsandbytes quantized no Linear module of {loaded.source}; nothing "
                f"to attack with {self.label}"
            )
        if model.generation_config is not None and loaded.tokenizer.pad_token_id is not None:
            model.generation_config.pad_token_id = loaded.tokenizer.pad_token_id
        out = LoadedModel(
            model, loaded.tokenizer, f"{loaded.source}+{self.label}", None, dict(loaded.meta)
        )
        c = self.config
        details = {
            "library": "bitsandbytes",
            "version": bnb.__version__,
            "bits": c.bits,
            "scheme": c.scheme if c.bits == 4 else "llm.int8",
            "compute_dtype": c.compute_dtype if c.bits == 4 else None,
            # unquantized modules
            "dtype": str(model.get_input_embeddings().weight.dtype).replace("torch.", ""),
            "double_quant": c.double_quant if c.bits == 4 else None,
            "device_map": device_map,
            "quantized_modules": len(quantized),
            "skipped": skipped,
        }
        log.info(
            "%s: %d Linear modules quantized, %s left in full precision",
            self.label,
            len(quantized),
            skipped or "none",
        )
        return Attacked(model=out, task=ctx.task, details=details)
