"""A real single-node Slurm for the session, or a skip that says why there is none."""
from __future__ import annotations

import pytest

from .cluster import LocalSlurm, SlurmUnavailable, ensure_installed


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        ensure_installed()
        cluster.start()
    except SlurmUnavailable as exc:
        cluster.stop()  # whatever did start
        pytest.skip(f"no Slurm: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
