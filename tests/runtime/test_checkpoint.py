"""Checkpoints are atomic and checksummed; a damaged latest one falls back to the previous."""
from __future__ import annotations

import torch

from runtime.checkpoint import CheckpointManager


def test_latest_valid_skips_a_corrupted_checkpoint(tmp_path):
    messages = []
    ckpt = CheckpointManager(tmp_path, keep=3, log=messages.append)
    ckpt.save(4, {"w": torch.ones(3)})
    path8 = ckpt.save(8, {"w": torch.full((3,), 2.0)})
    assert ckpt.latest_valid() == (8, path8)
    data = (path8 / "state.pt").read_bytes()
    (path8 / "state.pt").write_bytes(data[: len(data) // 2])  # truncated, as after a crash mid-write
    step, path = ckpt.latest_valid()
    assert step == 4 and torch.equal(ckpt.load(path)["w"], torch.ones(3))
    assert "step-00000008 is damaged" in messages[0]


def test_keep_prunes_old_and_leftover_temporaries_are_ignored(tmp_path):
    ckpt = CheckpointManager(tmp_path, keep=2, log=lambda m: None)
    for step in (1, 2, 3):
        ckpt.save(step, {"s": step})
    (tmp_path / ".tmp-step-00000004-999").mkdir()  # a save interrupted before its rename
    assert [p.name for p in ckpt.list()] == ["step-00000002", "step-00000003"]
    assert ckpt.latest_valid()[0] == 3


def test_missing_manifest_is_not_trusted(tmp_path):
    ckpt = CheckpointManager(tmp_path, keep=2, log=lambda m: None)
    ckpt.save(1, {"s": 1})
    path = ckpt.save(2, {"s": 2})
    (path / "manifest.json").unlink()
    assert ckpt.latest_valid()[0] == 1
