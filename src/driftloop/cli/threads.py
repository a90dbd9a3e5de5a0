"""One math thread per serving process unless the user says otherwise.

The predictor and the monitor answer one small inference (or one window) per
request on a machine whose cores the server's own threads, its workers and
often other services already use. OpenMP's default -- a thread per core, each
spin-waiting for work -- then fights them for the cores: XGBoost answered 31
req/s instead of ~1,180 on 2 cores, and one MMD permutation test took 5 s
instead of 0.18 s. OpenMP (XGBoost's ``nthread`` default, scikit-learn),
OpenBLAS and torch all read ``OMP_NUM_THREADS`` when they load, so it has to
be set before numpy/xgboost/torch are imported; worker processes inherit it.
"""

from __future__ import annotations

import os


def default_to_one_math_thread() -> None:
    """Set ``OMP_NUM_THREADS=1`` unless it is set already (a user's value always wins)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
