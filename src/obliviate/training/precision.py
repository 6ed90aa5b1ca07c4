"""bf16 autocast: the setting, hardware detection, and the one autocast context."""

from __future__ import annotations

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
    import contextlib

    import torch

    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
