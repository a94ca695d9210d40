"""Table 2, Table 1 (right), the test-set table, the table of datasets outside the paper, the
significance table, and their figures — all from the tidy per-case metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mednext.data.registry import get_dataset
from mednext.evaluation.io import EvaluationInputError
from mednext.evaluation.results import read_results
from mednext.statistics.aggregate import HEADLINE_COLUMNS, headlines
from mednext.statistics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from mednext.statistics.cases import CaseMatrix, case_matrices, dataset_conventions
from mednext.statistics.comparisons import comparisons_for, missing_references, paper_differences
from mednext.statistics.paired import significance_table
from mednext.tables.compare import PAPER_DATASETS, PROVENANCE_COLUMNS, compare, with_provenance, write_comparison
from mednext.vocabulary import CONVENTIONS, N_FOLDS, NAN_SKIPPED, TABLE_METRICS, metric, paper_name

log = logging.getLogger(__name__)

_NAMES = [paper_name(m) for m in TABLE_METRICS]
_METRIC_NAMES = " and ".join([", ".join(_NAMES[:-1]), _NAMES[-1]] if len(_NAMES) > 1 else _NAMES)
TABLE2_TITLE = f"Table 2: {N_FOLDS}-fold CV {_METRIC_NAMES}, reproduced vs reported"
ABLATION_TITLE = "Table 1 (right): MedNeXt-B ablations on BTCV and AMOS22, reproduced vs reported"
TEST_SET_TITLE = f"Test sets: {N_FOLDS}-fold MedNeXt-L (k5) ensemble, leaderboard score recorded vs reported"
OTHER_TITLE = f"Results on datasets outside the paper: cross-validation {_METRIC_NAMES}"
OTHER_STEM = "results_other_datasets"


def _units() -> str:
    return ", ".join(f"{paper_name(m)} in {metric(m).unit}" for m in TABLE_METRICS)


def _convention_notes(datasets: Iterable[str]) -> str:
    """For each dataset whose registry entry chooses how a region absent from both masks is averaged
    (other than skipping it, or with a second convention shown beside): what, and from which source."""
    notes = []
    for key in dict.fromkeys(str(d) for d in datasets):
        conventions = dataset_conventions(key)
        if conventions == (NAN_SKIPPED,):
            continue
        headline = CONVENTIONS[conventions[0]]
        note = f" {key} rows: {headline.description}, following {get_dataset(key).convention_source}."
        if len(conventions) > 1:
            note += f" Other convention: the same pooled value when {CONVENTIONS[conventions[1]].description}."
        notes.append(note)
    return "".join(notes)


def _statistics_caption(spacing_mode: str, n_folds: int, n_resamples: int, datasets: Iterable[str] = ()) -> str:
    return (
        f"Reproduced (pooled): the official cross-validation mean — the validation cases of all folds "
        f"pooled, mean of each region over them (a region absent from both masks, NaN, is skipped unless "
        f"a dataset's note says otherwise), then the mean over regions; {_units()}. "
        f"95 % CI: percentile bootstrap of that value, {n_resamples} "
        f"resamples of the cases, stratified by fold. Fold mean ± std: the same value per fold, "
        f"mean ± sample std over folds (the spread between folds). {n_folds} folds make a complete row. "
        f"Surface Dice at the configured tolerance with spacing mode `{spacing_mode}` (`paper`: spacing "
        f"forced to 1 as the official MedNeXt evaluation; `physical`: true mm). cases: validation cases pooled; "
        f"with few of them (the demo: 2 per fold) the bootstrap CI is too narrow to trust. provenance: the "
        f"row's key in provenance.csv; commits: the git commit its folds were trained at, or \"mixed (N)\"."
        + _convention_notes(datasets)
    )


def _caption(spacing_mode: str, n_folds: int, n_resamples: int, datasets: Iterable[str] = ()) -> str:
    return (
        _statistics_caption(spacing_mode, n_folds, n_resamples, datasets)
        + " Δ = reproduced − reported. ⚑: the paper's value lies outside the 95 % CI. — : run missing or "
        "not finished. The average column needs all four datasets complete (mean of their pooled "
        "values; no CI)."
    )


def _other_caption(spacing_mode: str, n_folds: int, n_resamples: int, datasets: Iterable[str] = ()) -> str:
    return (_statistics_caption(spacing_mode, n_folds, n_resamples, datasets)
            + " The paper reports no value for these datasets, so there is no reported column.")


def build_cv_table(reported_csv: Path, headline_rows: pd.DataFrame | None, n_folds: int) -> pd.DataFrame:
    """Every reported cross-validation value (Table 2 or Table 1 right) beside its reproduction."""
    return compare(pd.read_csv(reported_csv), headline_rows, n_folds)


def build_other_datasets(headline_rows: pd.DataFrame, paper_datasets: Iterable[str]) -> pd.DataFrame:
    """Network x dataset rows (DSC, SDC) for every dataset the paper did not use, e.g. the demo's."""
    rows = headline_rows[~headline_rows["dataset"].isin(list(paper_datasets))].copy()
    rows["metric"] = rows["metric"].map(paper_name)
    columns = ["network", "dataset", "metric"] + [c for c in HEADLINE_COLUMNS if c not in ("dataset", "network", "metric")]
    return rows[columns].sort_values(["dataset", "network", "metric"]).reset_index(drop=True)


def build_test_set(reported_csv: Path, leaderboard_csv: Path | None) -> pd.DataFrame:
    """Reported test-set scores beside the latest score a user recorded for the same dataset/metric."""
    reported = pd.read_csv(reported_csv)
    table = reported.rename(columns={"value": "reported"})
    table["reproduced"] = float("nan")
    if leaderboard_csv is not None and Path(leaderboard_csv).is_file():
        recorded = pd.read_csv(leaderboard_csv)
        recorded = (recorded[recorded["split"].astype(str).str.lower().isin(["test", "ensemble"])]
                    if "split" in recorded else recorded)
        latest = recorded.sort_values("recorded_at").groupby(["dataset", "network", "metric"]).tail(1)
        latest = latest.set_index(["dataset", "network", "metric"])["value"]
        table["reproduced"] = [latest.get((d, n, m), float("nan"))
                               for d, n, m in zip(table["dataset"], table["network"], table["metric"])]
    for column in ("ci_low", "ci_high", "fold_mean", "fold_std"):
        table[column] = float("nan")
    table["folds_done"] = table["reproduced"].notna().astype(int) * N_FOLDS
    table["delta"] = table["reproduced"] - table["reported"]
    table["flagged"] = False
    table["complete"] = table["reproduced"].notna()
    return table


def _matrices(results: pd.DataFrame | None, spacing_mode: str) -> dict[tuple[str, str, str], CaseMatrix]:
    if results is None or results.empty:
        return {}
    return {(d, n, metric): m for metric in TABLE_METRICS
            for (d, n), m in case_matrices(results, metric, spacing_mode).items()}


def write_all_tables(
    reported_dir: Path, metrics_csvs: Iterable[str | Path] | None, out_dir: Path, spacing_mode: str, n_folds: int,
    leaderboard_csv: Path | None = None, provenance_csv: Path | None = None,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
) -> list[Path]:
    """Regenerate every results table (CSV, Markdown, LaTeX, HTML), the significance table and the figures.

    ``metrics_csvs``: the tidy per-case ``metrics.csv`` files (missing or empty: every reproduced
    cell is —). ``provenance_csv`` (optional): adds ``provenance_key``, ``mixed_commits`` and ``commits`` to rows.
    """
    paths = [Path(p) for p in (metrics_csvs or [])]
    results = read_results(paths) if paths else None
    matrices = _matrices(results, spacing_mode)
    headline_rows = headlines(matrices.values(), n_resamples, seed)

    table2 = build_cv_table(reported_dir / "table2.csv", headline_rows, n_folds)
    ablations = build_cv_table(reported_dir / "table1_ablations.csv", headline_rows, n_folds)
    test_set = build_test_set(reported_dir / "test_set.csv", leaderboard_csv)
    paper_datasets = [d for d in PAPER_DATASETS if d in set(pd.read_csv(reported_dir / "table2.csv")["dataset"])]
    other = build_other_datasets(headline_rows, paper_datasets)
    if provenance_csv is not None:
        provenance = _read_provenance(Path(provenance_csv))
        table2, ablations, other = (with_provenance(t, provenance, str(provenance_csv)) for t in (table2, ablations, other))

    written = [
        *write_comparison(table2, out_dir, "table2", TABLE2_TITLE,
                          _caption(spacing_mode, n_folds, n_resamples, table2["dataset"]), ["network", "dataset", "metric"]),
        *write_comparison(ablations, out_dir, "table1_ablations", ABLATION_TITLE,
                          _caption(spacing_mode, n_folds, n_resamples, ablations["dataset"]),
                          ["ablation", "row_label", "dataset", "metric"]),
        *write_comparison(test_set, out_dir, "test_set", TEST_SET_TITLE,
                          "Reproduced: the latest score recorded with `mednext-repro record-leaderboard` "
                          "(split `test`); — : none recorded.", ["network", "dataset", "metric"],
                          cross_validation=False),
        *write_comparison(other, out_dir, OTHER_STEM, OTHER_TITLE,
                          _other_caption(spacing_mode, n_folds, n_resamples, other["dataset"]),
                          ["network", "dataset", "metric"]),
    ]
    written += _write_significance(matrices, reported_dir, paper_datasets, out_dir, spacing_mode, n_resamples, seed)
    from mednext.tables.plot import plot_reproduced_vs_reported

    written.append(plot_reproduced_vs_reported(pd.concat([table2, ablations], ignore_index=True),
                                               out_dir / "reproduced_vs_reported.png"))
    return written


def _read_provenance(path: Path) -> pd.DataFrame:
    """The provenance table, checked for the columns the tables use (one error naming the file)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: provenance table not found")
    frame = pd.read_csv(path, dtype={"fold": str, "git_commit": str})
    missing = [c for c in PROVENANCE_COLUMNS if c not in frame.columns]
    if missing:
        raise EvaluationInputError(f"{path}: not a provenance table, missing columns {missing}")
    return frame


def _write_significance(matrices: dict[tuple[str, str, str], CaseMatrix], reported_dir: Path,
                        paper_datasets: list[str], out_dir: Path, spacing_mode: str, n_resamples: int,
                        seed: int) -> list[Path]:
    from mednext.tables.significance import plot_significance, write_significance

    runs = sorted({(d, n) for d, n, _ in matrices})
    table = significance_table(matrices, comparisons_for(runs, paper_datasets), TABLE_METRICS, n_resamples, seed)
    reported = pd.concat([pd.read_csv(reported_dir / "table2.csv"), pd.read_csv(reported_dir / "table1_ablations.csv")],
                         ignore_index=True)
    table["paper_diff"] = paper_differences(table, reported)
    order = {d: i for i, d in enumerate(paper_datasets)}  # the paper's datasets first, in its order
    table = table.sort_values("dataset", key=lambda c: c.map(lambda d: (order.get(d, len(order)), d)), kind="stable")
    table = table.reset_index(drop=True)
    notes = missing_references(runs)
    for note in notes:
        log.info(note)
    return [*write_significance(table, out_dir, spacing_mode, n_resamples, notes),
            plot_significance(table, out_dir / "significance.png")]
