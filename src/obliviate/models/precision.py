"""bf16 autocast and device placement: the setting, hardware detection, the one autocast context,
and where a model's inputs go.

It sits below training and scoring (both use it), so neither has to import the other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from obliviate.types import Model

if TYPE_CHECKING:
    import torch

BF16Setting = Literal["auto", "on", "off"]
"""When to run under bf16 autocast: where the hardware is fast at it, always, or never."""


def bf16_supported(device: torch.device | str | None = None) -> bool:
    """Whether bf16 autocast is fast on this device (CUDA with bf16, or a CPU with AVX-512
    bf16/AMX)."""
    import torch

    if device is not None:
        dev = torch.device(device)
    else:
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool((check and check()) or (amx and amx()))
    return False


def resolve_bf16(setting: str, device: torch.device | str | None = None) -> bool:
    """Turn a ``"auto" | "on" | "off"`` setting into a decision."""
    if setting == "auto":
        return bf16_supported(device)
    return setting == "on"


def bf16_autocast(
    device: torch.device | str, enabled: bool = True
) -> contextlib.AbstractContextManager[object]:
    """The bf16 autocast context for ``device`` (a device, its name or type); a no-op if disabled.

    The one place obliviate builds an autocast, so training, reference caches, scoring and
    gradient passes run under the same numerics.
    """
    import torch

    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def inference_autocast(
    model: Model, device: torch.device | str, enabled: bool = True
) -> contextlib.AbstractContextManager[object]:
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
def bf16_linear_weights(
    model: Model, trainable: bool = False
) -> Iterator[dict[int, torch.nn.Parameter]]:
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

    saved: list[tuple[torch.nn.Module, str, torch.nn.Parameter]] = []
    # one bf16 copy per fp32 tensor, however many layers share it
    casts: dict[int, torch.nn.Parameter] = {}
    try:
        for module in model.modules():
            if not isinstance(module, torch.nn.Linear):
                continue
            for name in ("weight", "bias"):
                p = module._parameters.get(name)
                if (
                    type(p) is not torch.nn.Parameter
                    or p.dtype != torch.float32
                    or p.device.type == "meta"
                ):
                    continue
                if id(p) not in casts:
                    copy = p.detach().to(torch.bfloat16)
                    casts[id(p)] = torch.nn.Parameter(copy, requires_grad=trainable)
                saved.append((module, name, p))
                module._parameters[name] = casts[id(p)]
        yield casts
    finally:
        for module, name, p in reversed(saved):
            module._parameters[name] = p


def input_device(model: Model) -> torch.device:
    """Where a model's inputs go: its input embedding's device (a ``device_map`` may put the
    layers elsewhere; its hooks move activations along), the CPU for an offloaded embedding."""
    try:
        device = model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        device = next(model.parameters()).device
    return device if device.type != "meta" else type(device)("cpu")
