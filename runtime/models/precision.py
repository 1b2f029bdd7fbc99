"""Casting a diffusers model to a low-precision dtype the way `from_pretrained(torch_dtype=...)` does."""
from __future__ import annotations

import torch
from torch import nn


def cast_keeping_fp32(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast floating-point weights and buffers to `dtype`, except those under the submodules the class
    names in `_keep_in_fp32_modules` (norms, time embeddings, modulation tables), which stay fp32 as
    diffusers keeps them at load time. Models built from a config (toy world, tests, benchmarks) go
    through this; loaded ones get the same from `torch_dtype`. Casts tensors one by one because
    `model.to(dtype)` is what diffusers warns against."""
    keep = tuple(getattr(model, "_keep_in_fp32_modules", None) or ())
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not any(k in name.split(".") for k in keep):
            tensor.data = tensor.data.to(dtype)
    return model
