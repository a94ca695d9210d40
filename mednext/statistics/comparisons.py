"""Which paired comparisons the paper's claims call for, from the registries.

- every MedNeXt configuration against nnU-Net (Table 2: "MedNeXt ... outperforms nnUNet");
- every kernel-5 MedNeXt against its kernel-3 UpKern parent (§2.3, the UpKern / large-kernel question;
  the parent is ``NetworkSpec.init_from``);
- every Table 1 (right) ablation against the network it is compared with
  (``Ablation.compared_with`` in :mod:`mednext.ablations`).

Each comparison belongs to the table that shows its rows: ``table2`` / ``table1_ablations`` on the
paper's datasets, ``results_other_datasets`` elsewhere (the demo's synthetic set, user datasets).
Holm's correction runs within each of these tables.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from mednext.ablations import ABLATIONS
from mednext.networks import get_network
from mednext.statistics.paired import Comparison
from mednext.vocabulary import paper_name

REFERENCE_NETWORK = "nnUNet"
OTHER_DATASETS_TABLE = "results_other_datasets"


def _table(dataset: str, paper_table: str, paper_datasets: frozenset[str]) -> str:
    return paper_table if dataset in paper_datasets else OTHER_DATASETS_TABLE


def comparisons_for(runs: Iterable[tuple[str, str]], paper_datasets: Iterable[str]) -> list[Comparison]:
    """The comparisons among the (dataset, network) run sets in ``runs`` whose both sides ran."""
    present = set(runs)
    paper = frozenset(paper_datasets)
    ablation_bases = {ablation.network.name: ablation.compared_with for ablation in ABLATIONS}
    found: list[Comparison] = []
    for dataset, network in sorted(present):
        spec = get_network(network)
        wanted: list[tuple[str, str, str]] = []
        if spec.family == "mednext":
            wanted.append((REFERENCE_NETWORK, f"vs {REFERENCE_NETWORK}", "table2"))
            if spec.init_from is not None:
                wanted.append((spec.init_from, "k5 vs k3 parent (UpKern)", "table2"))
        if network in ablation_bases:
            wanted.append((ablation_bases[network], "ablation vs base", "table1_ablations"))
        for reference, kind, paper_table in wanted:
            if (dataset, reference) in present:
                found.append(Comparison(_table(dataset, paper_table, paper), dataset, network, reference, kind))
    return found


def missing_references(runs: Iterable[tuple[str, str]]) -> list[str]:
    """Human-readable notes for comparisons that cannot run because the reference run is absent."""
    present = set(runs)
    ablation_bases = {ablation.network.name: ablation.compared_with for ablation in ABLATIONS}
    notes = []
    for dataset, network in sorted(present):
        spec = get_network(network)
        references = []
        if spec.family == "mednext":
            references += [REFERENCE_NETWORK] + ([spec.init_from] if spec.init_from else [])
        references += [ablation_bases[network]] if network in ablation_bases else []
        notes += [f"{dataset}: {network} vs {r} ({r} not run)" for r in references if (dataset, r) not in present]
    return notes


def paper_differences(significance: pd.DataFrame, reported: pd.DataFrame) -> pd.Series:
    """The paper's reported difference network − reference per significance row (NaN when not reported).

    ``reported`` has columns network, dataset, metric (paper names, DSC/SDC) and value.
    """
    lookup = reported.drop_duplicates(["network", "dataset", "metric"]).set_index(["network", "dataset", "metric"])["value"]

    def value(network: str, dataset: str, metric: str) -> float:
        return float(lookup.get((network, dataset, paper_name(metric)), np.nan))

    return pd.Series([value(n, d, m) - value(r, d, m) for n, r, d, m in zip(
        significance["network"], significance["reference"], significance["dataset"], significance["metric"])],
        index=significance.index, dtype=np.float64)
