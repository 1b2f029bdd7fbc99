"""The model builders: the full Wan2.1-1.3B architecture (on the meta device: no memory, no compute)."""
from __future__ import annotations

import torch

from runtime.models.tiny import wan21_1_3b_config, wan21_1_3b_transformer


def test_wan21_1_3b_architecture():
    model = wan21_1_3b_transformer(dtype=torch.bfloat16, device="meta")
    config = model.config
    assert (config.num_layers, config.num_attention_heads * config.attention_head_dim, config.ffn_dim) == (30, 1536, 8960)
    assert (config.text_dim, config.freq_dim, tuple(config.patch_size)) == (4096, 256, (1, 2, 2))
    assert config.qk_norm == "rms_norm_across_heads" and config.cross_attn_norm
    assert sum(p.numel() for p in model.parameters()) == 1_418_996_800  # Wan2.1-T2V-1.3B's transformer
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert model.blocks[0].scale_shift_table.dtype == torch.float32  # kept in fp32 like from_pretrained
    assert wan21_1_3b_config()["num_layers"] == 30
