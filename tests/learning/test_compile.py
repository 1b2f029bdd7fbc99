"""`compile = true` trains the same weights as eager (torch.compile through inductor, on the CPU here)."""
from __future__ import annotations

import pytest
import torch

from tests.learning.test_deepspeed import trained
from tests.runtime.conftest import job_dir

pytestmark = pytest.mark.slow


def test_a_compiled_sft_trains_to_the_eager_weights(tmp_path):
    (tmp_path / "eager").mkdir()
    (tmp_path / "compiled").mkdir()
    eager = trained(tmp_path / "eager", "sft", 1, None)
    compiled = trained(tmp_path / "compiled", "sft", 1, None, extra="  compile = true")
    log = (job_dir(tmp_path / "compiled" / "sft1zNone", "tuned") / "log.txt").read_text()
    assert "compiled the transformer" in log
    assert eager.keys() == compiled.keys()  # compiled in place: checkpoints keep the model's own names
    for name, value in eager.items():  # fused kernels round differently: close, not bit-equal
        torch.testing.assert_close(compiled[name], value, rtol=1e-3, atol=1e-4, msg=name)
