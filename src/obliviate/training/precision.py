"""bf16 autocast: the setting, hardware detection, and the one autocast context."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

BF16Setting = Literal["auto", "on", "off"]
"""When to run under bf16 autocast: where the hardware is fast at it, always, or never."""


def bf16_supported(device: Any = None) -> bool:
    """Whether bf16 autocast is fast on this device (CUDA with bf16, or a CPU with AVX-512 bf16/AMX)."""
    import torch

    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool((check and check()) or (amx and amx()))
    return False


def resolve_bf16(setting: str, device: Any = None) -> bool:
    """Turn a ``"auto" | "on" | "off"`` setting into a decision."""
    if setting == "auto":
        return bf16_supported(device)
    return setting == "on"


def bf16_autocast(device: Any, enabled: bool = True) -> Any:
    """The bf16 autocast context for ``device`` (a device, its name or type); a no-op if disabled.

    The one place obliviate builds an autocast, so training, reference caches, scoring and
    gradient passes run under the same numerics.
    """
    import torch

    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def inference_autocast(model: Any, device: Any, enabled: bool = True) -> Any:
    """bf16 autocast for inference, with the linear layers' fp32 weights cast to bf16 once.

    Under autocast every ``nn.Linear`` casts its fp32 weight (and bias) to bf16 on each call, and
    on CPU nothing caches that cast: a decoding step of SmolLM2-135M spends about 40 % of its time
    re-casting weights. Inside this context each such layer holds a bf16 copy instead (see
    :func:`bf16_linear_weights`), so every matmul sees the very operands autocast would give it and
    the results are identical. Disabled, it is a no-op.
    """
    if not enabled:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(bf16_autocast(device, True))
    stack.enter_context(bf16_linear_weights(model))
    return stack


@contextlib.contextmanager
def bf16_linear_weights(model: Any, trainable: bool = False) -> Iterator[dict[int, Any]]:
    """Give each ``nn.Linear`` of ``model`` a bf16 copy of its fp32 weight and bias for the context.

    The copy is cast by the rule autocast uses (round to nearest), so under bf16 autocast the
    layer computes exactly what it computed before, without casting on every call. Other modules
    (embeddings, norms) keep their fp32 weights, so a weight tied to an embedding stays fp32
    there; quantized or already low-precision weights are left alone, and so are weights a
    ``device_map`` offloaded (on the meta device until a hook loads them). The originals are
    put back on exit. Costs 2 bytes per linear weight for the context's duration.

    Args:
        model: the module whose linear layers to swap.
        trainable: the copies take gradients (a backward pass then fills each copy's bf16
            ``.grad``, which autocast would have cast to fp32 into the original's).

    Yields:
        ``id(original parameter) -> its bf16 copy``.
    """
    import torch

    saved: list[tuple[Any, str, Any]] = []
    casts: dict[int, Any] = {}  # one bf16 copy per fp32 tensor, however many layers share it
    try:
        for module in model.modules():
            if not isinstance(module, torch.nn.Linear):
                continue
            for name in ("weight", "bias"):
                p = module._parameters.get(name)
                if type(p) is not torch.nn.Parameter or p.dtype != torch.float32 or p.device.type == "meta":
                    continue
                if id(p) not in casts:
                    casts[id(p)] = torch.nn.Parameter(p.detach().to(torch.bfloat16), requires_grad=trainable)
                saved.append((module, name, p))
                module._parameters[name] = casts[id(p)]
        yield casts
    finally:
        for module, name, p in reversed(saved):
            module._parameters[name] = p
