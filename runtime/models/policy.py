"""VideoPolicy: what every trainer needs from a text-to-video model, whatever its family.

Canonical layouts: pixels (B, F, 3, H, W) in [-1, 1]; latents (B, C, F, H, W); noise level sigma in
[0, 1] with x_s = (1 - s) x0 + s eps and the network predicting v = eps - x0 (ALGORITHMS.md §0).
Family adapters translate to each diffusers class's own layout and timestep scale."""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass
class TextCond:
    embeds: torch.Tensor  # (B, L, D)
    mask: torch.Tensor  # (B, L) bool

    def index(self, idx) -> "TextCond":
        return TextCond(self.embeds[idx], self.mask[idx])

    def repeat(self, n: int) -> "TextCond":
        return TextCond(self.embeds.repeat_interleave(n, 0), self.mask.repeat_interleave(n, 0))


class VideoPolicy(nn.Module):
    def __init__(self, spec: dict, transformer: nn.Module, encode_text: Callable[[list[str]], TextCond],
                 vae: nn.Module | None, call: Callable, vae_codec=None):
        super().__init__()
        self.spec = spec
        self.transformer = transformer
        self.vae = vae
        self._encode_text = encode_text
        self._call = call
        self._codec = vae_codec
        self.lora_rank = 0
        self._frozen_reference: nn.Module | None = None

    # ---- conditioning and spaces
    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> TextCond:
        return self._encode_text(list(prompts))

    def velocity(self, latents: torch.Tensor, sigma: torch.Tensor, text: TextCond,
                 transformer: nn.Module | None = None) -> torch.Tensor:
        model = transformer if transformer is not None else self.transformer
        sigma = torch.as_tensor(sigma, device=latents.device).float().reshape(-1).expand(latents.shape[0])
        return self._call(model, latents.to(self.compute_dtype), sigma, text)

    @torch.no_grad()
    def encode_video(self, pixels: torch.Tensor) -> torch.Tensor:
        if self._codec is None:
            return pixels.permute(0, 2, 1, 3, 4).float()
        return self._codec.encode(pixels)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self._codec is None:
            return latents.permute(0, 2, 1, 3, 4).float().clamp(-1, 1)
        return self._codec.decode(latents)

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        st, sh, sw = self.spec["vae_stride"]
        return (self.spec["latent_channels"], 1 + (frames - 1) // st if st > 1 else frames, height // sh, width // sw)

    @property
    def compute_dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    # ---- training state
    def add_lora(self, rank: int) -> None:
        from peft import LoraConfig

        self.transformer.requires_grad_(False)
        self.transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=LORA_TARGETS,
                                                init_lora_weights=True))
        self.lora_rank = rank

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.transformer.parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.transformer.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu().contiguous() for k, v in self.transformer.state_dict().items() if k in names}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(state) - set(self.transformer.state_dict())
        if missing:
            raise KeyError(f"checkpoint has parameters this model lacks: {sorted(missing)[:5]}")
        self.transformer.load_state_dict(state, strict=False)

    def save(self, folder: Path) -> None:
        """The trainable weights (all of them, or the LoRA adapters) as safetensors plus the spec."""
        import json

        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.trainable_state(), str(folder / "weights.safetensors"))
        (folder / "policy.json").write_text(json.dumps({"spec": self.spec, "lora_rank": self.lora_rank}, indent=2))

    def load(self, folder: Path) -> None:
        import json

        from safetensors.torch import load_file

        meta = json.loads((folder / "policy.json").read_text())
        if meta["lora_rank"] and not self.lora_rank:
            self.add_lora(meta["lora_rank"])
        state = load_file(str(folder / "weights.safetensors"))
        if meta["lora_rank"] and self.lora_rank:
            self.load_trainable_state(state)
        else:
            self.transformer.load_state_dict(state, strict=False)

    # ---- reference model
    @contextlib.contextmanager
    def reference(self):
        """The frozen reference: adapters disabled (LoRA: no second copy of the weights) or a frozen copy
        made once from the weights at the time of the first call."""
        if self.lora_rank:
            self.transformer.disable_adapters()
            try:
                yield self.transformer
            finally:
                self.transformer.enable_adapters()
            return
        if self._frozen_reference is None:
            self.refresh_reference()
        yield self._frozen_reference

    def refresh_reference(self) -> None:
        """Replace the reference by the current policy (OnlineVPO's curriculum reference updates)."""
        if self.lora_rank:
            raise ValueError("refresh with LoRA: merge adapters first")  # not reachable from the planner
        ref = copy.deepcopy(self.transformer).requires_grad_(False).eval()
        self._frozen_reference = ref
