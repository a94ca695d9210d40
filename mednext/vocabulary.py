"""The words of the results: cross-validation folds, metrics, and how a region absent from both masks is averaged.

Every module that counts folds, names a metric, converts it to the paper's name or to percent, or
averages per-case scores looks it up here; adding a metric to the tables is one :class:`Metric`
entry with ``in_tables=True``.

Facts:

- 5 folds: paper §3 and the official ``nnUNetTrainerV2.do_split`` (MedNeXt repository,
  ``nnunet_mednext/training/network_training/nnUNetTrainerV2.py`` L296:
  ``KFold(n_splits=5, shuffle=True, random_state=12345)``).
- DSC and surface Dice (SDC, also called NSD) in percent: the paper's Tables 1 (right) and 2; HD95 in
  mm: its test-set table.
- A region absent from ground truth and prediction has no DSC or SDC (NaN). The official region-based
  evaluation (``nnunet_mednext/evaluation/region_based_evaluation.py`` L176-189) writes two means per
  region: ``mean`` (NaN left out, ``np.nanmean``) and ``mean (nan is 1)`` (NaN counted as a perfect
  1). :data:`CONVENTIONS` names the two; each dataset's registry entry says which one its headline uses.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Folds of the cross-validation (paper §3; official ``do_split``).
N_FOLDS = 5
FOLDS: tuple[int, ...] = tuple(range(N_FOLDS))


@dataclass(frozen=True)
class Metric:
    """One segmentation metric.

    Args:
        key: its name in the tidy per-case results (:mod:`mednext.evaluation.results`).
        paper_name: its name in the paper's tables and in ``paper_tables/reported/*.csv``.
        unit: the unit of the value shown in the tables.
        aliases: other names the same metric goes by in reported tables.
        percent: shown times 100, as the paper prints it.
        higher_is_better: False for distances.
        in_tables: one of the metrics of the reproduced-vs-reported and significance tables.
        score_when_both_empty: the value the ``nan_is_1`` convention gives a region absent from both
            masks (as a fraction); None where no such convention exists (it stays NaN).
    """

    key: str
    paper_name: str
    unit: str
    aliases: tuple[str, ...] = ()
    percent: bool = False
    higher_is_better: bool = True
    in_tables: bool = False
    score_when_both_empty: float | None = None

    def scale(self) -> float:
        """Factor from the tidy value to the value shown in the tables."""
        return 100.0 if self.percent else 1.0


METRICS: tuple[Metric, ...] = (
    Metric("dsc", "DSC", "%", percent=True, in_tables=True, score_when_both_empty=1.0),
    Metric("sdc", "SDC", "%", aliases=("NSD",), percent=True, in_tables=True, score_when_both_empty=1.0),
    Metric("hd95", "HD95", "mm", higher_is_better=False),
)
_BY_NAME: dict[str, Metric] = {name.lower(): m for m in METRICS for name in (m.key, m.paper_name, *m.aliases)}

#: Tidy metric names of the results tables, in table order.
TABLE_METRICS: tuple[str, ...] = tuple(m.key for m in METRICS if m.in_tables)


def metric(name: str) -> Metric:
    """The metric called ``name`` (tidy key, paper name or alias, any case); KeyError naming the known ones."""
    found = _BY_NAME.get(str(name).lower())
    if found is None:
        known = ", ".join(f"{m.key} ({m.paper_name})" for m in METRICS)
        raise KeyError(f"unknown metric {name!r}; known: {known}")
    return found


def paper_name(name: str) -> str:
    """The paper's name of a metric; a name the vocabulary does not know is returned as given."""
    found = _BY_NAME.get(str(name).lower())
    return name if found is None else found.paper_name


def tidy_key(name: str) -> str | None:
    """The tidy key of a metric named in a reported table (``DSC``, ``NSD``, ...); None if unknown."""
    found = _BY_NAME.get(str(name).lower())
    return None if found is None else found.key


@dataclass(frozen=True)
class Convention:
    """How a region absent from both masks (NaN) enters the mean over cases."""

    key: str
    label: str
    description: str


NAN_SKIPPED = "nan_skipped"
NAN_IS_1 = "nan_is_1"
CONVENTIONS: dict[str, Convention] = {
    NAN_SKIPPED: Convention(NAN_SKIPPED, "NaN skipped", "a region absent from both masks is left out of that "
                            "region's mean (the region-based summary's 'mean' row)"),
    NAN_IS_1: Convention(NAN_IS_1, "NaN as 1", "a region absent from both masks counts as a perfect score, 1, for "
                         "DSC and SDC (the region-based summary's 'mean (nan is 1)' row)"),
}


def convention(key: str) -> Convention:
    """The convention ``key``; KeyError naming the known ones."""
    if key not in CONVENTIONS:
        raise KeyError(f"unknown empty-region convention {key!r}; known: {', '.join(CONVENTIONS)}")
    return CONVENTIONS[key]
