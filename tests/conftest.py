"""Suite-wide settings. Under pytest-xdist (`.ci/run` uses two workers on two cores) each worker and the
processes it starts use one thread each, so two workers share the cores instead of oversubscribing
them; a test that sets OMP_NUM_THREADS itself keeps its own value."""
from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
