"""A run: one network trained on one fold of one dataset, the unit of training, evaluation and tables.

The dataset is named by its registry key (:mod:`mednext.data.registry`) everywhere inside the
project; nnU-Net's folder name and id are derived from it only where nnU-Net needs them
(:func:`mednext.nnunet.paths.nnunet_folder`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mednext.networks import get_network


@dataclass(frozen=True, order=True)
class Run:
    """One training: ``network`` on ``fold`` of ``dataset`` (a registry key; fold ``"all"`` trains on every case)."""

    dataset: str
    network: str
    fold: int | str

    def parent(self) -> Run | None:
        """The run whose final checkpoint initialises this one by UpKern (§2.3: same dataset and fold), if any."""
        init_from = get_network(self.network).init_from
        return None if init_from is None else Run(self.dataset, init_from, self.fold)
