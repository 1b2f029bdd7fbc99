"""The LAION improved aesthetic predictor's released weights: an MLP on unit-norm CLIP ViT-L/14 image
embeddings, saved as the state dict of a `layers` nn.Sequential (`sac+logos+ava1-l14-linearMSE.pth`).

Two released variants, told apart by where the linear layers sit in the Sequential:
  linearMSE: Linear 0, Dropout, Linear 2, Dropout, Linear 4, Dropout, Linear 6, Linear 7 (no activations)
  reluMSE:   Linear 0, ReLU, Dropout, Linear 3, ReLU, Dropout, Linear 6, ReLU, Dropout, Linear 9, ReLU, Linear 11
Dropout is inactive when scoring, so the predictor is the chain of linear layers (with ReLU between them
in the second variant). Widths are read from the tensors: any input width and hidden sizes load.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from runtime.errors import JobError

LINEAR_MSE, RELU_MSE = [0, 2, 4, 6, 7], [0, 3, 6, 9, 11]


def is_mlp_state(state: dict) -> bool:
    return any(re.fullmatch(r"layers\.\d+\.weight", k) for k in state)


def mlp_from_state(state: dict[str, torch.Tensor], source: Path) -> nn.Sequential:
    """The predictor as a Sequential of its linear layers (and ReLUs for the reluMSE variant)."""
    indices = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"layers\.(\d+)\.weight", k)))
    if indices not in (LINEAR_MSE, RELU_MSE):
        raise JobError(f"{source}: linear layers at positions {indices} of `layers`; the LAION predictor has them at "
                       f"{LINEAR_MSE} (linearMSE) or {RELU_MSE} (reluMSE)")
    extra = set(state) - {f"layers.{i}.{p}" for i in indices for p in ("weight", "bias")}
    if extra:
        raise JobError(f"{source}: unexpected tensors {sorted(extra)[:4]} beside the predictor's linear layers")
    modules: list[nn.Module] = []
    width = None
    for n, i in enumerate(indices):
        weight = state[f"layers.{i}.weight"]
        if width is not None and weight.shape[1] != width:
            raise JobError(f"{source}: layer {i} takes {weight.shape[1]} features after a layer giving {width}")
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        linear.load_state_dict({"weight": weight.float(), "bias": state[f"layers.{i}.bias"].float()})
        modules.append(linear)
        if indices == RELU_MSE and n < len(indices) - 1:
            modules.append(nn.ReLU())
        width = weight.shape[0]
    if width != 1:
        raise JobError(f"{source}: the last layer gives {width} outputs; the predictor gives 1")
    return nn.Sequential(*modules)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A head file: safetensors, or a torch state dict (.pth / .pt / .bin) read without unpickling code."""
    if not path.is_file():
        raise JobError(f"aesthetic predictor: {path} is missing")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle that is not a plain state dict
        raise JobError(f"aesthetic predictor: {path} is not a plain tensor state dict ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise JobError(f"aesthetic predictor: {path} is not a state dict of tensors")
    return state
