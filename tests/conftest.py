"""Suite-wide settings. `.ci/run` uses two pytest-xdist workers on two cores, one test file per worker
at a time (`--dist loadfile`: a module's fixtures, such as one quickstart run or one real Slurm, are
built once). Each worker and the processes it starts use one thread, so the two workers share the
cores instead of oversubscribing them; a test that sets OMP_NUM_THREADS itself keeps its own value."""
from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
