"""Fu et al. (2022)'s Monte Carlo recipe done literally, as an independent reference.

Every star's value is drawn ``n_draws`` times from N(value, error), the draws of
a cluster are pooled and numpy takes their median, mean and standard deviation.
Nothing here comes from ``ingest``: the production estimator evaluates the
infinite-draw limit analytically and is checked against this.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

FU_DRAWS = 5000     # draws per star and parameter in Fu et al. (2022)


def pooled_draws(values: np.ndarray, errors: np.ndarray, n_draws: int,
                 rng: np.random.Generator) -> np.ndarray:
    """All draws of one cluster: ``n_draws`` from N(value, error) per star, pooled."""
    return rng.normal(values[:, None], errors[:, None], (len(values), n_draws)).ravel()


def brute_force_stats(values: np.ndarray, errors: np.ndarray, n_draws: int,
                      rng: np.random.Generator) -> tuple[dict[str, float], dict[str, float]]:
    """Median, mean and standard deviation of one cluster's pooled draws, and the
    standard error of each from the finite number of draws."""
    draws = pooled_draws(values, errors, n_draws, rng)
    result = {"median": float(np.median(draws)), "mean": float(draws.mean()),
              "std": float(draws.std())}
    return result, sampling_errors(values, errors, draws, result["median"])


def sampling_errors(values: np.ndarray, errors: np.ndarray, draws: np.ndarray,
                    median: float) -> dict[str, float]:
    """Standard errors of the brute-force statistics from their finite number of draws.

    N pooled draws of an equal-weight Gaussian mixture with density f:
    median 1 / (2 f(median) sqrt(N)) (asymptotic sample quantile);
    mean sqrt(<error^2> / N) (each star contributes the same number of draws,
    so only the within-star scatter is random);
    std sqrt(mu4 - sigma^4) / (2 sigma sqrt(N)) (delta method, mu4 the fourth
    central moment, taken from the draws).  The median and std formulas are
    for independent draws; equal draws per star only lower the true noise,
    so they are conservative.
    """
    n = draws.size
    density = stats.norm.pdf(median, values, errors).mean()
    centred = draws - draws.mean()
    sigma2 = np.mean(centred ** 2)
    mu4 = np.mean(centred ** 4)
    return {"median": float(1.0 / (2.0 * density * np.sqrt(n))),
            "mean": float(np.sqrt(np.mean(errors ** 2) / n)),
            "std": float(np.sqrt(mu4 - sigma2 ** 2) / (2.0 * np.sqrt(sigma2) * np.sqrt(n)))}
