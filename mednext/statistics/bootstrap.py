"""Fold-stratified bootstrap, vectorised: one weight matrix per case layout, estimators as matrix products.

A resample draws, within each fold, as many cases as the fold has, with replacement (the folds are
the strata: every resample keeps the cross-validation design). Resample ``b`` is the row ``W[b]`` of
case multiplicities; any estimator that is a ratio of weighted sums (a mean, a pooled per-region
nanmean) is then ``W @ values`` — no Python loop per resample. The CI is the 2.5th/97.5th percentile
of the resampled statistic (percentile bootstrap; Efron & Tibshirani 1993, ch. 13).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np

DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 20230925  # fixed default: the same inputs give the same CI on every machine
CONFIDENCE = 0.95
#: Resamples per block: bounds memory to BLOCK x n_cases float64 (BraTS21, 1251 cases: 20 MB).
BLOCK = 2_000


def _block_weights(fold_sizes: tuple[int, ...], n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, sum(fold_sizes)) multiplicities, each fold resampled within itself."""
    parts = []
    for size in fold_sizes:
        draws = rng.integers(0, size, size=(n_resamples, size))
        flat = draws + (np.arange(n_resamples)[:, None] * size)
        parts.append(np.bincount(flat.ravel(), minlength=n_resamples * size).reshape(n_resamples, size))
    return np.concatenate(parts, axis=1).astype(np.float64)


@lru_cache(maxsize=8)
def _weights_cached(fold_sizes: tuple[int, ...], n_resamples: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, n_resamples, BLOCK):
        block = _block_weights(fold_sizes, min(BLOCK, n_resamples - start), rng)
        block.setflags(write=False)
        blocks.append(block)
    return tuple(blocks)


def weight_blocks(fold_sizes: Sequence[int], n_resamples: int = DEFAULT_RESAMPLES,
                  seed: int = DEFAULT_SEED) -> Iterator[np.ndarray]:
    """Blocks of the bootstrap weight matrix for cases laid out fold after fold (``fold_sizes``).

    Depends only on the layout, the count and the seed, so every run set with the same layout
    (e.g. all networks on one dataset) reuses it (cached).
    """
    sizes = tuple(int(s) for s in fold_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"bootstrap needs at least one case per fold, got fold sizes {sizes}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    yield from _weights_cached(sizes, int(n_resamples), int(seed))


def pooled_region_mean(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row of ``weights``: per-region mean of the finite values (weighted), then the mean over regions.

    ``weights`` (B, n_cases), ``values`` (n_cases, n_regions), or (n_cases,) for one region. With
    ``weights`` a row of ones this is the official pooled cross-validation mean: pool the cases,
    nanmean per region, average the regions (docs/sources.md#cv-mean). A region without any finite
    value is left out of the average; a row without any is NaN. The point estimate and every
    resample go through this one function, so NaN handling is identical.
    """
    return pooled_region_means(weights, [values])[0]


def pooled_region_means(weights: np.ndarray, values_list: Sequence[np.ndarray]) -> list[np.ndarray]:
    """:func:`pooled_region_mean` of several value matrices on the same cases, in one matrix product."""
    columns, widths = [], []
    for values in values_list:
        matrix = values[:, None] if values.ndim == 1 else values
        finite = np.isfinite(matrix)
        columns += [np.where(finite, matrix, 0.0), finite.astype(np.float64)]
        widths.append(matrix.shape[1])
    products = weights @ np.concatenate(columns, axis=1)
    results, offset = [], 0
    for width in widths:
        sums, counts = products[:, offset:offset + width], products[:, offset + width:offset + 2 * width]
        offset += 2 * width
        has_value = counts > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            region_means = np.where(has_value, sums / np.where(has_value, counts, 1.0), 0.0)
            n_regions = has_value.sum(axis=1)
            results.append(np.where(n_regions > 0, region_means.sum(axis=1) / np.maximum(n_regions, 1), np.nan))
    return results


def percentile_ci(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the finite bootstrap samples; (NaN, NaN) when there are none."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_samples_many(values_list: Sequence[np.ndarray], fold_sizes: Sequence[int],
                           n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> list[np.ndarray]:
    """:func:`pooled_region_mean` on every resample, for several value matrices on the same cases
    (rows laid out fold after fold): one pass over the weights for all of them."""
    n_cases = sum(fold_sizes)
    for values in values_list:
        if values.shape[0] != n_cases:
            raise ValueError(f"{values.shape[0]} rows of values but fold sizes {tuple(fold_sizes)} sum to {n_cases}")
    parts = [pooled_region_means(block, values_list) for block in weight_blocks(fold_sizes, n_resamples, seed)]
    return [np.concatenate([part[i] for part in parts]) for i in range(len(values_list))]


def bootstrap_samples(values: np.ndarray, fold_sizes: Sequence[int], n_resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED) -> np.ndarray:
    """:func:`pooled_region_mean` on every resample: (n_resamples,). A 1-D ``values`` is one region (a mean)."""
    return bootstrap_samples_many([values], fold_sizes, n_resamples, seed)[0]


def bootstrap_ci(values: np.ndarray, fold_sizes: Sequence[int], n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Fold-stratified percentile bootstrap CI of :func:`pooled_region_mean` (the mean, for 1-D values)."""
    return percentile_ci(bootstrap_samples(values, fold_sizes, n_resamples, seed), confidence)
