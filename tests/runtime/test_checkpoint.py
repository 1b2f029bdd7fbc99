"""Checkpoints are atomic and checksummed; a damaged latest one is detected, set aside, and the previous used."""
from __future__ import annotations

import json

import pytest
import torch

from runtime.checkpoint import CheckpointManager


@pytest.fixture
def manager(tmp_path):
    messages: list[str] = []
    ckpt = CheckpointManager(tmp_path / "checkpoints", keep=3, log=messages.append)
    ckpt.messages = messages
    return ckpt


def test_truncated_latest_falls_back_to_the_previous(manager):
    manager.save(4, {"w": torch.ones(3)})
    path8 = manager.save(8, {"w": torch.full((3,), 2.0)})
    assert manager.latest_valid() == (8, path8)
    data = (path8 / "state.pt").read_bytes()
    (path8 / "state.pt").write_bytes(data[: len(data) // 2])  # as after a crash mid-write
    step, path = manager.latest_valid()
    assert step == 4 and torch.equal(manager.load(path)["w"], torch.ones(3))
    assert "step-00000008 is damaged (state.pt is truncated" in manager.messages[0]
    assert (path8.parent / "damaged-step-00000008").is_dir()  # kept for inspection, never loaded
    assert [p.name for p in manager.list()] == ["step-00000004"]


def test_flipped_byte_of_the_same_size_is_caught_by_the_checksum(manager):
    manager.save(1, {"w": torch.zeros(64)})
    path = manager.save(2, {"w": torch.ones(64)})
    data = bytearray((path / "state.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "state.pt").write_bytes(bytes(data))
    assert manager.latest_valid()[0] == 1
    assert "does not match its checksum" in manager.messages[0]


def test_missing_or_mismatched_manifest_is_not_trusted(manager):
    manager.save(1, {"s": 1})
    two = manager.save(2, {"s": 2})
    three = manager.save(3, {"s": 3})
    (three / "manifest.json").unlink()
    manifest = json.loads((two / "manifest.json").read_text())
    (two / "manifest.json").write_text(json.dumps({**manifest, "step": 7}))  # copied from elsewhere
    assert manager.latest_valid()[0] == 1
    assert "no readable manifest" in manager.messages[0] and "manifest is for step 7" in manager.messages[1]


def test_keeps_the_last_k_and_clears_interrupted_saves(tmp_path):
    ckpt = CheckpointManager(tmp_path, keep=2, log=lambda m: None)
    (tmp_path).mkdir(exist_ok=True)
    (tmp_path / ".tmp-step-00000009-999999").mkdir()  # a save killed before its rename
    for step in (1, 2, 3):
        ckpt.save(step, {"s": step})
    assert [p.name for p in ckpt.list()] == ["step-00000002", "step-00000003"]
    assert not (tmp_path / ".tmp-step-00000009-999999").exists()
    assert ckpt.latest_valid()[0] == 3 and ckpt.load(ckpt.latest_valid()[1])["s"] == 3


def test_saving_a_step_again_replaces_it(tmp_path):
    ckpt = CheckpointManager(tmp_path, keep=2, log=lambda m: None)
    ckpt.save(5, {"s": "first"})
    ckpt.save(5, {"s": "second"})
    assert ckpt.load(ckpt.latest_valid()[1])["s"] == "second"


def test_nothing_saved_means_no_checkpoint(tmp_path):
    assert CheckpointManager(tmp_path / "none").latest_valid() is None
