"""Synthetic cluster catalogues with an injected broken [Fe/H] gradient (the thesis's)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ingest import gradients

INNER, OUTER, KNEE, AT_KNEE, SCATTER = -0.047, -0.014, 11.5, -0.2105, 0.05


def broken_truth(r_gc: np.ndarray) -> np.ndarray:
    """The injected [Fe/H] at r_gc: slopes INNER / OUTER meeting at KNEE."""
    return AT_KNEE + INNER * np.minimum(r_gc - KNEE, 0) + OUTER * np.maximum(r_gc - KNEE, 0)


def gradient_clusters(n: int, seed: int) -> pd.DataFrame:
    """Clusters with the broken gradient, 0.05 dex intrinsic scatter and stated errors,
    a mild [X/Fe] trend (+0.003 dex/kpc) and RVs, in the cluster table's columns."""
    rng = np.random.default_rng(seed)
    r_gc = rng.uniform(5, 17.5, n)
    err = rng.uniform(0.01, 0.08, n)
    frame = pd.DataFrame({
        "cluster_name": [f"Test {i}" for i in range(n)],
        "r_gc": r_gc, "z": rng.normal(0, 0.3, n), "logage50": rng.uniform(6.8, 9.8, n),
        "n_flag12": rng.integers(0, 30, n), "rv": rng.normal(0, 20, n), "rv_err": 0.5,
        "fe_h": broken_truth(r_gc) + rng.normal(0, SCATTER, n) + rng.normal(0, err),
        "fe_h_err": err})
    for element in gradients.ELEMENTS:
        frame[f"{element}_fe"] = 0.003 * (r_gc - 8) + rng.normal(0, 0.03, n)
        frame[f"{element}_fe_err"] = 0.03
    return frame
