"""Sequence parallelism (Ulysses): the k ranks of a sequence-parallel group hold the same rows and each
keeps 1/k of a video's tokens through the transformer blocks; around each attention an all-to-all swaps
the token split for a head split (each rank attends over every token with heads/k heads), and back.

The attention split is diffusers' own context parallelism (`ContextParallelConfig(ulysses_degree=k)`,
`ModelMixin.enable_parallelism`, the model's `_cp_plan`: split before the first block, gather after
`proj_out`), used as is; this module is its glue to a job's process layout, written once:

- the layout: rank = data-parallel index x k + sequence index, so a group is k consecutive ranks (one
  node's GPUs when k divides the GPUs per node); the device mesh is (dp, ring = 1, ulysses = k);
- diffusers builds its mesh on `torch.accelerator`'s device, which a CPU build does not have (it divides
  by a device count of 0), so the mesh is built here on the job's device and handed over;
- gradients: the split is a slice and the gather's backward takes this rank's slice, so each rank's
  parameter gradients are its tokens' share and the group's sum is the whole sample's gradient
  (runtime/trainers/parallel.py sums over the group, averages over the data-parallel ranks).

A deep copy of a split transformer would call the original's weights (diffusers' hooks close over the
original module's forward), so the frozen reference is taken with `frozen_copy`: an unsplit copy (a
no-grad forward keeps about one block's activations, so splitting it would save little).

Families whose diffusers transformer has no `_cp_plan` (CogVideoX in diffusers 0.42) are refused."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Layout:
    """Where a rank sits in a (data-parallel x sequence-parallel) job."""

    world_size: int
    degree: int  # sequence-parallel degree k
    rank: int = 0

    def __post_init__(self):
        if self.degree < 1 or self.world_size % self.degree:
            raise ValueError(f"sequence-parallel degree {self.degree} does not divide {self.world_size} processes")

    @property
    def data_parallel(self) -> int:
        return self.world_size // self.degree

    @property
    def dp_rank(self) -> int:
        return self.rank // self.degree

    @property
    def sp_rank(self) -> int:
        return self.rank % self.degree


def transformers_of(module: nn.Module) -> list[nn.Module]:
    """The diffusers transformers inside a policy's transformer (Wan 2.2's ExpertPair holds two)."""
    from diffusers.models.modeling_utils import ModelMixin

    if isinstance(module, ModelMixin):
        return [module]
    return [m for m in module.children() if isinstance(m, ModelMixin)]


def check_supported(module: nn.Module, degree: int) -> None:
    """Raises ValueError naming what stops `module` from running with sequence-parallel degree `degree`."""
    models = transformers_of(module)
    if not models:
        raise ValueError(f"{type(module).__name__} is not a diffusers transformer")
    for model in models:
        if getattr(model, "_cp_plan", None) is None:
            raise ValueError(f"{type(model).__name__} has no context-parallel plan in diffusers; "
                             "sequence parallelism runs on Wan transformers")
        heads = getattr(model.config, "num_attention_heads", None)
        if heads is not None and heads % degree:
            raise ValueError(f"sequence_parallel = {degree} does not divide the {heads} attention heads")


def device_mesh(layout: Layout, device: str | torch.device):
    """The job's (dp, ring, ulysses) mesh; every rank must call it (it creates process groups)."""
    from torch.distributed.device_mesh import init_device_mesh

    kind = torch.device(device).type
    return init_device_mesh(kind, (layout.data_parallel, 1, layout.degree), mesh_dim_names=("dp", "ring", "ulysses"))


def enable(module: nn.Module, layout: Layout, device: str | torch.device, mesh=None) -> None:
    """Splits every transformer of `module` over the sequence-parallel group of this rank (collective:
    every rank calls it, in the same order). Degree 1 changes nothing."""
    if layout.degree == 1:
        return
    import torch.distributed as dist
    from diffusers import ContextParallelConfig
    from diffusers.models._modeling_parallel import ParallelConfig

    check_supported(module, layout.degree)
    mesh = mesh if mesh is not None else device_mesh(layout, device)
    for model in transformers_of(module):
        config = ParallelConfig(context_parallel_config=ContextParallelConfig(ulysses_degree=layout.degree,
                                                                              mesh=mesh))

        def resolve(cfg, model=model, config=config):  # diffusers' own resolver, on the job's device
            config.setup(dist.get_rank(), dist.get_world_size(), torch.device(device), mesh=mesh)
            model._parallel_config = config
            return config

        model._resolve_parallel_config = resolve
        model.enable_parallelism(config=config.context_parallel_config)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of `module` with its own weights; a sequence-split transformer's copy is unsplit (its
    context-parallel hooks and attention configuration dropped: it runs every token on each rank)."""
    import copy

    clone = copy.deepcopy(module)
    for sub in clone.modules():
        if "_diffusers_hook" in sub.__dict__:
            del sub.__dict__["_diffusers_hook"]
            sub.__dict__.pop("forward", None)  # back to the class's forward, on the copy's own weights
        processor = getattr(sub, "processor", None)
        if getattr(processor, "_parallel_config", None) is not None:
            processor._parallel_config = None
        if getattr(sub, "_parallel_config", None) is not None:
            sub._parallel_config = None
    return clone
