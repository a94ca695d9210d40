"""Paired comparisons on the same validation cases: is network A really better than B here?

The paired unit is a validation case: its mean over the regions counted in the table's mean, in the
table's spacing mode and the dataset's headline empty-region convention (the unit the headline averages),
in percent. Per (dataset, metric, network, reference): mean paired difference network − reference with a
fold-stratified bootstrap 95 % CI, the two-sided Wilcoxon signed-rank p (``scipy.stats.wilcoxon`` defaults:
zero differences dropped, ``zero_method="wilcox"``), and Holm's step-down correction within each table.
Cases scored for one network and not the other (or without any finite value) are dropped with a warning
naming them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mednext.statistics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_samples_many, percentile_ci
from mednext.statistics.cases import CaseMatrix

log = logging.getLogger(__name__)

SIGNIFICANCE_COLUMNS = ["table", "dataset", "metric", "network", "reference", "kind", "n_cases", "n_dropped",
                        "mean_diff", "ci_low", "ci_high", "p_value", "p_holm", "paper_diff"]


@dataclass(frozen=True)
class Comparison:
    """``network`` against ``reference`` on ``dataset``; ``table`` is the Holm family."""

    table: str
    dataset: str
    network: str
    reference: str
    kind: str  # "vs nnUNet", "k5 vs k3 (UpKern)", "ablation vs base"


def paired_case_means(a: CaseMatrix, b: CaseMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """Case means of ``a`` and ``b`` on their common cases (fold order), their folds, the kept and the dropped cases.

    A case is dropped when only one of the two runs scored it or when either has no finite value;
    a warning names every dropped case.
    """
    mean_a = pd.Series(a.case_means(), index=pd.Index(a.cases))
    mean_b = pd.Series(b.case_means(), index=pd.Index(b.cases))
    fold_of = pd.Series(a.folds, index=pd.Index(a.cases))
    in_b = set(b.cases)
    common = [c for c in a.cases if c in in_b]
    only = sorted(set(a.cases).symmetric_difference(in_b))
    values_a, values_b = mean_a[common].to_numpy(), mean_b[common].to_numpy()
    usable = np.isfinite(values_a) & np.isfinite(values_b)
    no_value = [c for c, ok in zip(common, usable) if not ok]
    keep = [c for c, ok in zip(common, usable) if ok]
    dropped = only + no_value
    if only:
        message = (f"{a.dataset} {a.metric}: {a.network} vs {b.network}: {len(only)} case(s) scored for only one "
                   f"of the two runs dropped from the pair: {', '.join(only)}")
        log.warning(message)
        warnings.warn(message, stacklevel=2)
    if no_value:
        message = (f"{a.dataset} {a.metric}: {a.network} vs {b.network}: {len(no_value)} case(s) without any finite "
                   f"value dropped from the pair: {', '.join(no_value)}")
        log.warning(message)
        warnings.warn(message, stacklevel=2)
    return values_a[usable], values_b[usable], fold_of[common].to_numpy()[usable], keep, dropped


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of the paired differences (scipy defaults); NaN when undefined."""
    if differences.size == 0 or not np.any(differences != 0):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # scipy's small-sample notes
        return float(stats.wilcoxon(differences).pvalue)


def holm(p_values: Iterable[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979); NaN entries stay NaN and do not count in m."""
    p = np.asarray(list(p_values), dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = valid.size
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


@dataclass(frozen=True)
class _Pair:
    diff: np.ndarray
    cases: tuple[str, ...]
    folds: tuple[str, ...]
    n_dropped: int


def _pair(a: CaseMatrix, b: CaseMatrix) -> _Pair:
    mean_a, mean_b, folds, kept, dropped = paired_case_means(a, b)
    return _Pair(mean_a - mean_b, tuple(kept), tuple(folds.tolist()), len(dropped))


def _rows(pairs: list[_Pair], n_resamples: int, seed: int) -> list[dict[str, object]]:
    """Mean difference, bootstrap CI (pairs on the same cases share one pass), Wilcoxon p."""
    cis: dict[int, tuple[float, float]] = {}
    layouts: dict[tuple, list[int]] = {}
    for index, pair in enumerate(pairs):
        if pair.diff.size and n_resamples > 0:
            layouts.setdefault((pair.cases, pair.folds), []).append(index)
    for (_, folds), members in layouts.items():
        _, sizes = np.unique(np.asarray(folds), return_counts=True)  # rows are sorted by fold
        samples = bootstrap_samples_many([pairs[i].diff for i in members], tuple(sizes), n_resamples, seed)
        cis.update({i: percentile_ci(s) for i, s in zip(members, samples)})
    rows = []
    for index, pair in enumerate(pairs):
        low, high = cis.get(index, (np.nan, np.nan))
        rows.append({"n_cases": int(pair.diff.size), "n_dropped": pair.n_dropped,
                     "mean_diff": float(pair.diff.mean()) if pair.diff.size else np.nan,
                     "ci_low": low, "ci_high": high, "p_value": wilcoxon_p(pair.diff)})
    return rows


def compare_pair(a: CaseMatrix, b: CaseMatrix, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> dict[str, object]:
    """Mean paired difference ``a − b`` (percent points), its bootstrap CI, Wilcoxon p and case counts."""
    return _rows([_pair(a, b)], n_resamples, seed)[0]


def significance_table(matrices: dict[tuple[str, str, str], CaseMatrix], comparisons: Iterable[Comparison],
                       metrics: Iterable[str], n_resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Every comparison whose two runs exist, per metric; ``p_holm`` within each ``table``.

    ``matrices`` maps (dataset, network, metric) to the run set's :class:`CaseMatrix`.
    """
    labels, pairs = [], []
    for comparison in comparisons:
        for metric in metrics:
            a = matrices.get((comparison.dataset, comparison.network, metric))
            b = matrices.get((comparison.dataset, comparison.reference, metric))
            if a is None or b is None:
                continue
            labels.append({"table": comparison.table, "dataset": comparison.dataset, "metric": metric,
                           "network": comparison.network, "reference": comparison.reference, "kind": comparison.kind})
            pairs.append(_pair(a, b))
    rows = [{**label, **row} for label, row in zip(labels, _rows(pairs, n_resamples, seed))]
    table = pd.DataFrame(rows, columns=[c for c in SIGNIFICANCE_COLUMNS if c not in ("p_holm", "paper_diff")])
    table["p_holm"] = np.nan
    for _, index in table.groupby("table").groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"])
    return table
