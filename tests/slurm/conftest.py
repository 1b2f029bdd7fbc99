from __future__ import annotations

import pytest

from .cluster import LocalSlurm, SlurmUnavailable, ensure_installed


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    try:
        ensure_installed()
        cluster = LocalSlurm(tmp_path_factory.mktemp("slurm")).start()
    except SlurmUnavailable as exc:
        pytest.skip(f"no Slurm: {exc}")
    yield cluster
    cluster.stop()
