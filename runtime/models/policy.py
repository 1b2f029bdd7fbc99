"""VideoPolicy: what every trainer needs from a text-to-video model, whatever its family.

Canonical layouts, the same for every family: pixels (B, F, 3, H, W) in [-1, 1]; latents
(B, C, F, H, W); noise level sigma in [0, 1] with x_s = (1 - s) x0 + s eps, and `velocity` returns the
flow velocity v = eps - x0 in fp32 (ALGORITHMS.md §0). Each family's adapter translates to its diffusers
class's own layout, timestep scale and parameterisation (see wan.py, cogvideox.py), so trainers never
branch on the family."""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from runtime.parallel.sequence import frozen_copy
from vpolang.schema.families import video_shape_problem

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections of Wan and CogVideoX
WEIGHTS_FILE, META_FILE = "weights.safetensors", "policy.json"

# (transformer, latents (B, C, F, H, W) in the transformer's dtype, sigma (B,) fp32, text) -> fp32 velocity
Denoise = Callable[[nn.Module, torch.Tensor, torch.Tensor, "TextCond"], torch.Tensor]


@dataclass
class TextCond:
    """Text conditioning: encoder states (B, L, D) and the token mask (B, L), True on real tokens."""

    embeds: torch.Tensor
    mask: torch.Tensor

    def index(self, idx) -> "TextCond":
        return TextCond(self.embeds[idx], self.mask[idx])

    def repeat(self, n: int) -> "TextCond":
        """Each row n times in a row (a group of n rollouts per prompt)."""
        return TextCond(self.embeds.repeat_interleave(n, 0), self.mask.repeat_interleave(n, 0))

    def cat(self, other: "TextCond") -> "TextCond":
        return TextCond(torch.cat([self.embeds, other.embeds]), torch.cat([self.mask, other.mask]))

    def to(self, device) -> "TextCond":
        return TextCond(self.embeds.to(device), self.mask.to(device))

    def __len__(self) -> int:
        return self.embeds.shape[0]


@dataclass(frozen=True)
class LoraSpec:
    rank: int
    alpha: float
    targets: tuple[str, ...] = LORA_TARGETS
    dropout: float = 0.0

    def config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.rank, lora_alpha=self.alpha, target_modules=list(self.targets),
                          lora_dropout=self.dropout, init_lora_weights=True)


class VideoPolicy(nn.Module):
    """A denoiser (`transformer`, trainable) with its frozen text encoder and codec (VAE or identity).

    Build one with `runtime.models.families.build_policy(spec)` or `VideoPolicy.from_pretrained(path)`."""

    def __init__(self, spec: dict, transformer: nn.Module, text_encoder: nn.Module, codec: nn.Module,
                 denoise: Denoise, prediction: str, dtype: torch.dtype):
        super().__init__()
        self.spec = dict(spec)
        self.transformer = transformer
        self.text_encoder = text_encoder.requires_grad_(False).eval()
        self.codec = codec.requires_grad_(False).eval()
        self._denoise = denoise
        self._prediction = prediction
        self._dtype = dtype
        self.lora: LoraSpec | None = None
        self.lineage: list[dict] = []  # weight files (full, or adapters merged in order) on top of the base
        self.base_folder: Path | None = None  # the diffusers folder the base was loaded from (exports need it)
        self._frozen_reference: nn.Module | None = None
        self._lora_reference: dict[str, torch.Tensor] | None = None  # LoRA: adapters at the last refresh
        # what `velocity` calls for the trainable weights: the transformer, or an engine wrapping it
        # (DeepSpeed ZeRO-3 gathers partitioned weights in its forward); kept out of the module tree
        self.__dict__["_runner"] = None

    @classmethod
    def from_pretrained(cls, path: str | Path, family: str | None = None, dtype: torch.dtype = torch.float32,
                        spec: dict | None = None) -> "VideoPolicy":
        """Load a local folder in the diffusers pipeline layout (family read from model_index.json)."""
        from .families import from_pretrained

        return from_pretrained(path, family=family, dtype=dtype, spec=spec)

    # ---- what the model is
    @property
    def family(self) -> str:
        return self.spec["family"]

    @property
    def prediction(self) -> str:
        """What the network itself predicts: `velocity` (rectified flow: Wan, shapes) or `epsilon` (the
        DDPM family, CogVideoX). `velocity()` always returns the flow velocity; DPO picks its beta scale
        and error form from this."""
        return self.spec.get("prediction") or self._prediction

    @property
    def compute_dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    # ---- conditioning, spaces and the network
    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> TextCond:
        return self.text_encoder(list(prompts))

    def velocity(self, latents: torch.Tensor, sigma, text: TextCond,
                 transformer: nn.Module | None = None) -> torch.Tensor:
        """The flow velocity v = eps - x0 at noise level sigma (scalar or (B,)), fp32, latents' layout.
        `transformer` runs another set of weights (the frozen reference) through the same adapter."""
        model = transformer if transformer is not None else self._runner
        model = model if model is not None else self.transformer
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=latents.device).reshape(-1)
        sigma = sigma.expand(latents.shape[0])
        text = TextCond(text.embeds.to(latents.device, self._dtype), text.mask.to(latents.device))
        return self._denoise(model, latents.to(self._dtype), sigma, text).float()

    @torch.no_grad()
    def encode_video(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (B, F, 3, H, W) in [-1, 1] -> latents (B, C, F', H', W'), fp32."""
        return self.codec.encode(pixels.to(self.device)).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, F', H', W') -> pixels (B, F, 3, H, W) clamped to [-1, 1], fp32."""
        return self.codec.decode(latents.to(self.device)).float().clamp(-1, 1)

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, F', H', W') of a video of `frames` x `height` x `width` pixels; checks divisibility by the
        rule the compiler's preflight applies at the recipe line (vpolang/schema/families.py)."""
        st, sh, sw = self.codec.stride
        problem = video_shape_problem(frames, height, width, self.codec.stride, self.spec["patch"],
                                      self.codec.odd_latent_frames)
        if problem is not None:
            raise ValueError(f"{self.family}: {problem[1]}")
        latent_frames = (frames - 1) // st + 1
        return self.codec.channels, latent_frames, height // sh, width // sw

    # ---- training state
    def train(self, mode: bool = True) -> "VideoPolicy":
        super().train(mode)
        self.text_encoder.eval()  # frozen parts never switch to train mode (real T5s have dropout)
        self.codec.eval()
        if self._frozen_reference is not None:
            self._frozen_reference.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.transformer.parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The trainable tensors by their transformer state-dict name, on the CPU."""
        names = {n for n, p in self.transformer.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu().contiguous() for k, v in self.transformer.state_dict().items() if k in names}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        unknown = set(state) - set(self.transformer.state_dict())
        if unknown:
            raise KeyError(f"the weights name parameters this model lacks: {sorted(unknown)[:5]}")
        self.transformer.load_state_dict(state, strict=False)

    def gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations in the backward pass (memory for time)."""
        if enabled:
            self.transformer.enable_gradient_checkpointing()
        else:
            self.transformer.disable_gradient_checkpointing()

    def add_lora(self, rank: int, alpha: float | None = None, targets: tuple[str, ...] = LORA_TARGETS,
                 dropout: float = 0.0) -> None:
        """Freeze the transformer and attach peft LoRA adapters (B = 0: the output is unchanged)."""
        if self.lora is not None:
            raise ValueError("this policy already has LoRA adapters")
        lora = LoraSpec(int(rank), float(alpha if alpha is not None else rank), tuple(targets), float(dropout))
        self.transformer.requires_grad_(False)
        self.transformer.add_adapter(lora.config())
        self.lora = lora

    @contextlib.contextmanager
    def adapters_disabled(self) -> Iterator[nn.Module]:
        """Run the base weights: LoRA adapters off inside the block (no second copy of the weights)."""
        if self.lora is None:
            raise ValueError("this policy has no LoRA adapters to disable")
        self.transformer.disable_adapters()
        try:
            yield self.transformer
        finally:
            self.transformer.enable_adapters()

    @contextlib.contextmanager
    def reference(self) -> Iterator[nn.Module]:
        """The frozen reference transformer, to pass to `velocity(..., transformer=ref)` under no_grad.
        Without LoRA: a frozen copy of the weights as they were at the first call (or at the last
        `refresh_reference`). With LoRA: the base weights (adapters disabled) until the first refresh,
        then the transformer run with the adapter snapshot that refresh took (the policy with its
        adapters as they were then: no second copy of the base weights)."""
        if self.lora is not None:
            if self._lora_reference is None:
                with self.adapters_disabled() as base:
                    yield base
                return
            yield WithWeights(self.transformer, self._lora_reference)
            return
        if self._frozen_reference is None:
            self.refresh_reference()
        yield self._frozen_reference

    def run_through(self, runner: nn.Module | None) -> None:
        """Route `velocity`'s calls of the trainable weights through `runner` (None: the transformer)."""
        self.__dict__["_runner"] = runner

    def refresh_reference(self) -> None:
        """Make the current weights the reference (OnlineVPO's periodic reference update). Copies into
        the existing reference when there is one (no second allocation; under ZeRO-3 the caller gathers
        the weights around this call). With LoRA the reference becomes the base plus a snapshot of the
        current adapters (their size only)."""
        if self.lora is not None:
            with torch.no_grad():
                self._lora_reference = {k: v.detach().clone() for k, v in self.transformer.named_parameters()
                                        if v.requires_grad}
            return
        if self._frozen_reference is None:
            self._frozen_reference = frozen_copy(self.transformer).requires_grad_(False).eval()
            return
        with torch.no_grad():
            self._frozen_reference.load_state_dict(self.transformer.state_dict())

    def reference_state(self) -> dict[str, torch.Tensor] | None:
        """The reference's weights for checkpoints of trainers that refresh it: the frozen copy, or with
        LoRA the adapter snapshot (None while the reference is still the base model)."""
        if self.lora is not None:
            ref = self._lora_reference
            return None if ref is None else {k: v.detach().cpu().clone() for k, v in ref.items()}
        if self._frozen_reference is None:
            return None
        return {k: v.detach().cpu().clone() for k, v in self._frozen_reference.state_dict().items()}

    def load_reference_state(self, state: dict[str, torch.Tensor] | None) -> None:
        if self.lora is not None:
            self._lora_reference = None if state is None else {k: v.to(self.device) for k, v in state.items()}
            return
        if state is None:
            return
        if self._frozen_reference is None:
            self.refresh_reference()
        self._frozen_reference.load_state_dict(state)

    def merge_lora(self) -> None:
        """Fold the adapters into the base weights and remove them; the transformer is trainable again."""
        if self.lora is None:
            raise ValueError("this policy has no LoRA adapters to merge")
        self.transformer.fuse_lora()
        self.transformer.unload_lora()
        self.transformer.requires_grad_(True)
        self.lora = None
        self._lora_reference = None

    # ---- persistence
    def save(self, folder: str | Path) -> None:
        """Write the policy's weights as safetensors with the spec (`policy.json`), and, for a model
        loaded from a diffusers folder, its diffusers export (`pipeline/`, and `lora/` for LoRA; see
        export.py), named in policy.json's `diffusers`.

        Without LoRA: the whole transformer. With LoRA: only the adapters, plus the weight files its base
        was built from (`lineage`: earlier stages' full weights or merged adapters, hard-linked when
        possible), so a chain of LoRA stages reloads exactly."""
        from safetensors.torch import save_file

        from . import export

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        lineage = []
        if self.lora is None:
            state = {k: v.detach().cpu().contiguous() for k, v in self.transformer.state_dict().items()}
        else:
            state = self.trainable_state()
            for i, entry in enumerate(self.lineage):
                name = f"lineage_{i}.safetensors"
                _link_or_copy(Path(entry["file"]), folder / name)
                lineage.append({"file": name, "lora": entry["lora"]})
        lora = None if self.lora is None else {**self.lora.__dict__, "targets": list(self.lora.targets)}
        (folder / WEIGHTS_FILE).unlink(missing_ok=True)  # a policy saved again into the same folder
        exported = self._export(folder, state, lora, lineage) if export.exportable(self.base_folder) else None
        if not (folder / WEIGHTS_FILE).exists():  # not already a link to the export's weights
            save_file(state, str(folder / WEIGHTS_FILE))
        meta = {"spec": self.spec, "lora": lora, "lineage": lineage, "diffusers": exported}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=str))

    def _export(self, folder: Path, state: dict[str, torch.Tensor], lora: dict | None,
                lineage: list[dict]) -> dict:
        """The diffusers export beside the policy's own files (export.py). A full fine-tune of a one-
        transformer family shares its weight file with the pipeline's (a hard link: one copy on disk)."""
        from safetensors.torch import load_file

        from . import export

        modules = export.expert_modules(self.transformer)
        components = list(modules)
        if lora is None:
            written = export.write_pipeline(folder, self.base_folder, modules,
                                            export.split_by_component(state, components))
            if components == ["transformer"]:
                os.link(written["transformer"], folder / WEIGHTS_FILE)
            return {"pipeline": export.PIPELINE_DIR, "lora": None}
        full = lineage[0] if lineage and lineage[0]["lora"] is None else None
        states = None if full is None else export.split_by_component(load_file(str(folder / full["file"])), components)
        export.write_pipeline(folder, self.base_folder, modules, states)
        chain = [(load_file(str(folder / e["file"])), e["lora"]) for e in lineage if e["lora"] is not None]
        files = export.write_lora(folder, self.base_folder, components, [*chain, (state, lora)])
        return {"pipeline": export.PIPELINE_DIR, "lora": files}

    def load(self, folder: str | Path) -> None:
        """Load what `save` wrote: full weights, or adapters merged into the base (after the lineage).
        The result has no active adapters: a later stage adds its own, and its reference is this policy."""
        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        if self.lora is not None:
            raise ValueError("load weights before adding LoRA adapters")
        entries = [*meta["lineage"], {"file": WEIGHTS_FILE, "lora": meta["lora"]}]
        for entry in entries:
            self._apply_weights(folder / entry["file"], entry["lora"])
        last_full = max((i for i, e in enumerate(entries) if e["lora"] is None), default=0)
        self.lineage = [{"file": str(folder / e["file"]), "lora": e["lora"]} for e in entries[last_full:]]

    def _apply_weights(self, file: Path, lora: dict | None) -> None:
        from safetensors.torch import load_file

        state = load_file(str(file), device=str(self.device))
        if lora is None:
            self.load_trainable_state(state)
            return
        self.add_lora(lora["rank"], lora["alpha"], tuple(lora["targets"]), lora["dropout"])
        self.load_trainable_state(state)
        self.merge_lora()


class WithWeights:
    """A module run with some of its parameters replaced (torch.func.functional_call: nothing is
    modified in place, so a pending backward through the module is unaffected). Attributes other than
    the call (`config`) are the module's."""

    def __init__(self, module: nn.Module, weights: dict[str, torch.Tensor]):
        self.module, self.weights = module, weights

    def __call__(self, *args, **kwargs):
        return torch.func.functional_call(self.module, self.weights, args, kwargs, strict=False)

    def __getattr__(self, name: str):
        return getattr(self.module, name)


def _link_or_copy(src: Path, dst: Path) -> None:
    import os
    import shutil

    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)  # weight files are never modified in place, so sharing the inode is safe
    except OSError:
        shutil.copyfile(src, dst)
