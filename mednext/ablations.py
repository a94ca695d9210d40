"""The paper's ablations (Table 1, right): one :class:`Ablation` entry each, the single source.

An entry holds the ablation network itself (registered in :mod:`mednext.networks` with the
paper's other entries), the network its Table 1 row is compared with, the
network it changes (it trains at that network's cost) and the row group it fills in
``paper_tables/reported/table1_ablations.csv``. From these entries come the ``ablation_<key>``
Snakemake targets (:mod:`mednext.workflow.targets`, one rule each in ``workflow/rules/tables.smk``),
cluster resources (:mod:`mednext.workflow.resources`) and the "ablation vs base" comparisons of the
significance table (:mod:`mednext.statistics.comparisons`). Adding an ablation is adding one entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from mednext.network_registry import NetworkSpec
from mednext.network_specs import mednext_spec

TARGET_PREFIX = "ablation_"


@dataclass(frozen=True)
class Ablation:
    """One Table 1 (right) ablation.

    Attributes:
        key: its row group, the ``ablation`` column of ``table1_ablations.csv`` (e.g. ``"upkern"``);
            the Snakemake target is ``ablation_<key>``.
        network: the ablation network, registered in the network registry.
        compared_with: the network its Table 1 row is set against (the "+" row of the group).
        modifies: the paper network it changes; it trains at that network's cost (resources).
    """

    key: str
    network: NetworkSpec
    compared_with: str
    modifies: str

    @property
    def target(self) -> str:
        """Snakemake target that reruns this ablation and the networks it is compared with."""
        return TARGET_PREFIX + self.key

    @property
    def networks(self) -> tuple[str, ...]:
        """The ablation network and the network it is compared with."""
        return (self.network.name, self.compared_with)


#: Table 1 (right), MedNeXt-B on BTCV and AMOS22 (§3.2 "Ablations").
ABLATIONS: tuple[Ablation, ...] = (
    Ablation(
        "resampling",
        mednext_spec("B", 3, name="MedNeXt-B_k3_standard_resampling", residual_resampling=False, family="ablation",
                     description="MedNeXt-B k3 with standard (non-residual) up/down-sampling (Table 1, right)"),
        compared_with="MedNeXt-B_k3", modifies="MedNeXt-B_k3",
    ),
    Ablation(
        "upkern",
        mednext_spec("B", 5, name="MedNeXt-B_k5_scratch", family="ablation",
                     description="MedNeXt-B k5 trained from scratch, no UpKern (Table 1, right)"),
        compared_with="MedNeXt-B_k5", modifies="MedNeXt-B_k5",
    ),
    Ablation(
        "twice",
        mednext_spec("B", 3, name="MedNeXt-B_k3_twice", init_from="MedNeXt-B_k3", family="ablation",
                     description="MedNeXt-B k3 trained a second time from its own trained weights (Table 1, right)"),
        compared_with="MedNeXt-B_k5", modifies="MedNeXt-B_k3",
    ),
)


def get_ablation(target: str) -> Ablation:
    """The ablation whose Snakemake target (``ablation_upkern``) or key (``upkern``) is ``target``."""
    for ablation in ABLATIONS:
        if target in (ablation.target, ablation.key):
            return ablation
    raise KeyError(f"unknown ablation {target!r}; known: {', '.join(a.target for a in ABLATIONS)}")


def ablation_of_network(network: str) -> Ablation | None:
    """The ablation whose network is ``network``, or None."""
    return next((a for a in ABLATIONS if a.network.name == network), None)
