"""Sequence parallelism of degree 2 (diffusers' Ulysses attention over 2 gloo processes on the CPU) gives
the transformer outputs, input gradients and parameter gradients (summed over the group) of degree 1,
in fp32, for a tiny Wan 2.1 transformer (also with gradient checkpointing) and a Wan 2.2 expert pair; the frozen copy a reference is taken
with keeps its own weights; CogVideoX, which has no context-parallel plan in diffusers, is refused by
name."""
from __future__ import annotations

import copy
import os

import pytest
import torch

from runtime.parallel import sequence

TOLERANCE = dict(rtol=1e-5, atol=1e-6)  # fp32; the sums differ only in order (measured: <= 2e-8)


def _models():
    from runtime.models.tiny import WAN22_BOUNDARY, tiny_wan_transformer
    from runtime.models.wan import ExpertPair

    torch.manual_seed(0)
    wan = tiny_wan_transformer()
    pair = ExpertPair(tiny_wan_transformer(), tiny_wan_transformer(), WAN22_BOUNDARY)
    checkpointed = copy.deepcopy(wan)  # the same weights, each block recomputed in the backward
    checkpointed.enable_gradient_checkpointing()
    return {"wan": wan, "wan22": pair, "wan_checkpointed": checkpointed}


def _step(model, x, t, e):
    x = x.clone().requires_grad_()
    out = model(hidden_states=x, timestep=t, encoder_hidden_states=e, return_dict=False)[0]
    (out.square().mean() + out.mean()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return out.detach(), x.grad, grads


def _worker(rank: int, world: int, port: int, results):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(2, 16, 3, 8, 8, generator=g)  # 3 x 4 x 4 = 48 tokens: 24 per rank
        e = torch.randn(2, 16, 32, generator=g)
        t = {"wan": torch.tensor([500.0, 200.0]), "wan22": torch.tensor([950.0, 100.0]),  # both experts
             "wan_checkpointed": torch.tensor([500.0, 200.0])}
        reference = {name: _step(m, x, t[name], e) for name, m in _models().items()}
        layout = sequence.Layout(world, world, rank)
        mesh = sequence.device_mesh(layout, "cpu")
        split = _models()
        seen = []
        for name, model in split.items():
            sequence.enable(model, layout, "cpu", mesh)
            block = sequence.transformers_of(model)[0].blocks[0]
            handle = block.register_forward_hook(lambda mod, args, out: seen.append(out.shape[1]))
            out, dx, grads = _step(model, x, t[name], e)
            handle.remove()
            dist.all_reduce(dx)  # each rank holds its tokens' share of the gradients
            for grad in grads.values():
                dist.all_reduce(grad)
            ref_out, ref_dx, ref_grads = reference[name]
            torch.testing.assert_close(out, ref_out, **TOLERANCE)
            torch.testing.assert_close(dx, ref_dx, **TOLERANCE)
            assert grads.keys() == ref_grads.keys()
            for n, grad in grads.items():
                torch.testing.assert_close(grad, ref_grads[n], **TOLERANCE, msg=f"{name} {n}")
        assert seen and all(tokens == 48 // world for tokens in seen), seen  # the blocks saw half the tokens
        # the frozen reference: its own weights (a plain deep copy would run the original's), unsplit
        wan = split["wan"]
        frozen = sequence.frozen_copy(wan)
        with torch.no_grad():
            before = frozen(hidden_states=x, timestep=t["wan"], encoder_hidden_states=e, return_dict=False)[0]
            for p in wan.parameters():
                p.add_(0.01)
            after = frozen(hidden_states=x, timestep=t["wan"], encoder_hidden_states=e, return_dict=False)[0]
        torch.testing.assert_close(after, before, rtol=0, atol=0)
        torch.testing.assert_close(before, reference["wan"][0], **TOLERANCE)
        results[rank] = "ok"
    except BaseException as exc:  # reported by the parent
        results[rank] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_degree_two_matches_degree_one():
    import torch.multiprocessing as mp

    from runtime.distributed import free_port

    results = mp.Manager().dict()
    mp.spawn(_worker, args=(2, free_port(), results), nprocs=2, join=True)
    assert dict(results) == {0: "ok", 1: "ok"}


def test_layout_and_refusals():
    layout = sequence.Layout(world_size=8, degree=4, rank=6)
    assert (layout.data_parallel, layout.dp_rank, layout.sp_rank) == (2, 1, 2)
    with pytest.raises(ValueError, match="does not divide 6 processes"):
        sequence.Layout(world_size=6, degree=4)
    from runtime.models.tiny import tiny_wan_transformer

    with pytest.raises(ValueError, match="does not divide the 2 attention heads"):
        sequence.check_supported(tiny_wan_transformer(), 4)
    from diffusers import CogVideoXTransformer3DModel

    cog = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
                                      text_embed_dim=32, num_layers=1, sample_width=8, sample_height=8,
                                      sample_frames=5, time_embed_dim=16)
    with pytest.raises(ValueError, match="CogVideoXTransformer3DModel has no context-parallel plan"):
        sequence.check_supported(cog, 2)
