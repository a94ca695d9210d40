"""Where every workflow file lives, as path patterns (for rules) and concrete paths (for targets).

Training outputs keep nnU-Net v2's own layout (``nnUNet_results/<DatasetXXX_Name>/<Trainer>__<Plans>__
<Configuration>/fold_<F>/checkpoint_final.pth``) so stock nnU-Net tools work on them; metrics and
tables use the registries' names (``results/<dataset>/<network>/fold_<F>/metrics.csv``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mednext.data.registry import get_dataset
from mednext.networks import get_network, network_for_trainer
from mednext.workflow.grid import Run


@dataclass(frozen=True)
class Layout:
    """The folders of one workflow config (``paths`` and ``plans`` keys)."""

    nnunet: Path
    downloads: Path
    results: Path
    tables: Path
    logs: Path
    plans: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Layout:
        paths = config["paths"]
        return cls(Path(paths["nnunet"]), Path(paths["downloads"]), Path(paths["results"]),
                   Path(paths["tables"]), Path(paths["logs"]), config["plans"])

    @property
    def raw(self) -> Path:
        return self.nnunet / "nnUNet_raw"

    @property
    def preprocessed(self) -> Path:
        return self.nnunet / "nnUNet_preprocessed"

    @property
    def nnunet_results(self) -> Path:
        return self.nnunet / "nnUNet_results"

    def nnunet_env(self) -> dict[str, str]:
        """nnU-Net's three folder variables, absolute."""
        return {"nnUNet_raw": str(self.raw.resolve()), "nnUNet_preprocessed": str(self.preprocessed.resolve()),
                "nnUNet_results": str(self.nnunet_results.resolve())}

    # -- patterns with Snakemake wildcards --------------------------------------------------
    def raw_pattern(self) -> str:
        return f"{self.raw}/{{dataset_folder}}/dataset.json"

    def plans_pattern(self) -> str:
        return f"{self.preprocessed}/{{dataset_folder}}/{self.plans}.json"

    def splits_pattern(self) -> str:
        return f"{self.preprocessed}/{{dataset_folder}}/splits_final.json"

    def checkpoint_pattern(self) -> str:
        return (f"{self.nnunet_results}/{{dataset_folder}}/{{trainer}}__{self.plans}__{{configuration}}"
                f"/fold_{{fold}}/checkpoint_final.pth")

    def metrics_pattern(self) -> str:
        return f"{self.results}/{{dataset}}/{{network}}/fold_{{fold}}/metrics.csv"

    # -- concrete paths ---------------------------------------------------------------------
    def plans_json(self, dataset: str) -> str:
        return self.plans_pattern().format(dataset_folder=get_dataset(dataset).folder_name)

    def splits_json(self, dataset: str) -> str:
        return self.splits_pattern().format(dataset_folder=get_dataset(dataset).folder_name)

    def checkpoint(self, run: Run) -> str:
        spec = get_network(run.network)
        return self.checkpoint_pattern().format(dataset_folder=get_dataset(run.dataset).folder_name,
                                                trainer=spec.trainer_name, configuration=spec.configuration,
                                                fold=run.fold)

    def validation_folder(self, run: Run) -> str:
        return str(Path(self.checkpoint(run)).parent / "validation")

    def metrics(self, run: Run) -> str:
        return self.metrics_pattern().format(dataset=run.dataset, network=run.network, fold=run.fold)

    def ground_truth_folder(self, dataset: str) -> str:
        """Reference labels at original spacing, as nnU-Net's preprocessing copies them."""
        return f"{self.preprocessed}/{get_dataset(dataset).folder_name}/gt_segmentations"


def dataset_of_folder(dataset_folder: str) -> str:
    """Registry key of the dataset whose nnU-Net folder is ``dataset_folder`` (a wildcard of nnU-Net's paths)."""
    spec = get_dataset(dataset_folder)
    if spec.folder_name != dataset_folder:  # get_dataset also accepts keys and ids; a wildcard is a folder
        raise ValueError(f"{dataset_folder!r} is not the nnU-Net folder of a registered dataset")
    return spec.key


def run_from_checkpoint_wildcards(dataset_folder: str, trainer: str, fold: str | int) -> Run:
    """Invert :meth:`Layout.checkpoint`: the run a ``train`` job's wildcards stand for."""
    return Run(dataset_of_folder(dataset_folder), network_for_trainer(trainer).name, int(fold))
