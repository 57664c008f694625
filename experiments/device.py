"""Where fine-tuned runs train: ``cpu``, ``cuda`` (``cuda:N``) or ``auto``, and the autocast
dtype there (a leaf module: torch only)."""
from __future__ import annotations

__all__ = ["resolve_device", "autocast_dtype"]


def resolve_device(device: str | None) -> str:
    """``auto``/``None`` → ``cuda`` if available else ``cpu``; ``cuda`` without CUDA and
    unknown names → ``ValueError`` (one line, for the CLI)."""
    import torch
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N, auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return device


def autocast_dtype(device: str):
    """``torch.bfloat16`` on a CUDA device that supports it, else ``None`` (float32)."""
    import torch
    if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
