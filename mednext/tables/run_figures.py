"""What the runs did, as pictures: training curves, per-class DSC, and the UpKern start of each kernel-5 run.

- Training curves: nnU-Net v2 keeps its per-epoch log in every checkpoint (``checkpoint['logging']``:
  ``train_losses``, ``val_losses``, ``mean_fg_dice`` = the pseudo-Dice on the validation batches,
  ``ema_fg_dice``); read from ``checkpoint_final.pth`` with the weights-only unpickler.
- Per-class DSC: from the tidy ``metrics.csv`` files of the evaluate step (validation cases), mean
  over cases per fold, then over folds; the bar spans the fold means.
- UpKern start (paper §2.3): the kernel-5 run's first-epoch training loss beside its kernel-3
  parent's first- and last-epoch loss. A k5 run that starts where its parent ended shows the weights
  were transferred; the gain UpKern brings is Table 1's ablation, not this picture.

The workflow's ``figures`` rule runs ``mednext-repro figures`` (:mod:`mednext.commands.figures`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from mednext.atomic import atomic_output  # noqa: E402

#: Keys of nnU-Net v2's ``nnUNetLogger`` that the curves use (``training/logging/nnunet_logger.py``).
LOG_KEYS = ("train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice")
CURVES_PNG = "training_curves.png"
PER_CLASS_PNG = "per_class_dsc.png"
UPKERN_PNG = "upkern_first_epoch.png"


class FigureInputError(ValueError):
    """A checkpoint or metrics file that cannot be drawn (names the file)."""


@dataclass(frozen=True)
class RunLog:
    """One training's per-epoch log."""

    dataset: str
    network: str
    fold: int
    epochs: pd.DataFrame  # columns: epoch + LOG_KEYS


def read_training_log(checkpoint: str | Path, dataset: str, network: str, fold: int) -> RunLog:
    """The per-epoch ``logging`` of an nnU-Net v2 checkpoint (weights-only load)."""
    from mednext.checkpoint_io import load_weights_only

    checkpoint = Path(checkpoint)
    try:
        logging = load_weights_only(checkpoint)["logging"]
        columns = {key: [float(v) for v in logging[key]] for key in LOG_KEYS}
    except FileNotFoundError:
        raise FigureInputError(f"{checkpoint}: checkpoint not found") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise FigureInputError(f"{checkpoint}: no nnU-Net training log in the checkpoint ({error})") from None
    n = min(len(v) for v in columns.values())
    if n == 0:
        raise FigureInputError(f"{checkpoint}: the training log has no finished epoch")
    frame = pd.DataFrame({key: values[:n] for key, values in columns.items()})
    frame.insert(0, "epoch", np.arange(n))
    return RunLog(dataset, network, int(fold), frame)


def _save(fig: plt.Figure, out_png: Path) -> Path:
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(out_png)


def plot_training_curves(logs: Sequence[RunLog], out_png: str | Path) -> Path:
    """One row per (dataset, network): losses (left) and validation pseudo-Dice (right), one colour per fold."""
    networks = list(dict.fromkeys((log.dataset, log.network) for log in logs))
    if not networks:
        raise FigureInputError("no training logs to draw")
    fig, axes = plt.subplots(len(networks), 2, figsize=(11, 2.8 * len(networks)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, (dataset, network) in zip(axes, networks):
        for log in sorted((x for x in logs if (x.dataset, x.network) == (dataset, network)), key=lambda x: x.fold):
            colour = colours[log.fold % len(colours)]
            e = log.epochs
            row[0].plot(e["epoch"], e["train_losses"], "-o", ms=3, color=colour, label=f"fold {log.fold} train")
            row[0].plot(e["epoch"], e["val_losses"], "--s", ms=3, color=colour, label=f"fold {log.fold} validation")
            row[1].plot(e["epoch"], e["mean_fg_dice"], "-o", ms=3, color=colour, label=f"fold {log.fold}")
            row[1].plot(e["epoch"], e["ema_fg_dice"], ":", color=colour,
                        label=f"fold {log.fold}: nnU-Net's EMA (0.9 decay; picks checkpoint_best)")
        row[0].set_title(f"{network} ({dataset}): loss", fontsize=10, loc="left")
        row[0].set_ylabel("loss (CE + negative soft Dice;\nlower is better)", fontsize=8)
        row[1].set_title("same run: pseudo-Dice of the epoch's validation batch", fontsize=10, loc="left")
        row[1].set_ylabel("mean foreground Dice")
        row[1].set_ylim(0, 1)
        for ax in row:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
    fig.suptitle("Training curves from nnU-Net's checkpoint log (per epoch)", y=1.0)
    fig.tight_layout()
    return _save(fig, Path(out_png))


def per_class_dsc(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean DSC (%) per dataset, network and class: over cases per fold, then over folds (min/max of fold means)."""
    dsc = metrics[metrics["metric"] == "dsc"]
    if dsc.empty:
        raise FigureInputError("no DSC rows in the metrics")
    dsc = dsc[dsc["spacing_mode"] == sorted(dsc["spacing_mode"].unique())[0]]  # DSC does not depend on spacing
    per_fold = (dsc.groupby(["dataset", "network", "class", "fold"], sort=False)["value"].mean() * 100).reset_index()
    grouped = per_fold.groupby(["dataset", "network", "class"], sort=False)["value"]
    return pd.DataFrame({"mean": grouped.mean(), "low": grouped.min(), "high": grouped.max(),
                         "n_folds": grouped.count()}).reset_index()


def plot_per_class_dsc(metrics: pd.DataFrame, out_png: str | Path) -> Path:
    """Grouped bars: per class, one bar per network (validation cases), fold spread as the error bar."""
    table = per_class_dsc(metrics)
    datasets = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(len(datasets), 1, figsize=(11, 4.2 * len(datasets)), squeeze=False)
    for ax, dataset in zip(axes[:, 0], datasets):
        rows = table[table["dataset"] == dataset]
        classes = list(dict.fromkeys(rows["class"]))
        networks = list(dict.fromkeys(rows["network"]))
        width = 0.8 / len(networks)
        for i, network in enumerate(networks):
            sub = rows[rows["network"] == network].set_index("class").reindex(classes)
            x = np.arange(len(classes)) + (i - (len(networks) - 1) / 2) * width
            err = [(sub["mean"] - sub["low"]).to_numpy(), (sub["high"] - sub["mean"]).to_numpy()]
            bars = ax.bar(x, sub["mean"], width, yerr=err, capsize=2, label=network)
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
        n_folds = int(rows["n_folds"].max())
        ax.set_xticks(np.arange(len(classes)), classes)
        ax.set_ylim(0, 105)
        ax.set_ylabel("DSC, % (validation cases)")
        ax.set_title(f"{dataset}: DSC per class, mean over {n_folds} fold(s); bar = range of the fold means")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=len(networks))
    fig.tight_layout()
    return _save(fig, Path(out_png))


def upkern_pairs(networks: Iterable[str]) -> list[tuple[str, str]]:
    """(kernel-3 parent, UpKern child) pairs among ``networks`` (registry ``init_from``)."""
    from mednext.networks import get_network

    names = list(networks)
    return [(get_network(n).init_from, n) for n in names if get_network(n).init_from in names]


def _is_generated(dataset: str) -> bool:
    """Whether ``dataset`` is written by the project (the synthetic demo set) rather than real images."""
    from mednext.data.errors import UnknownDatasetError
    from mednext.data.registry import get_dataset

    try:
        return get_dataset(dataset).generate is not None
    except UnknownDatasetError:
        return False


def plot_upkern_first_epoch(logs: Sequence[RunLog], out_png: str | Path) -> Path:
    """Per UpKern pair and fold: parent's first- and last-epoch loss beside the child's first-epoch loss."""
    by_key = {(log.dataset, log.network, log.fold): log for log in logs}
    pairs = upkern_pairs(dict.fromkeys(log.network for log in logs))
    fig, ax = plt.subplots(figsize=(9, 4.6))
    if not pairs:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No UpKern run in this configuration\n(no network starts from another's weights).",
                ha="center", va="center", fontsize=12, transform=ax.transAxes)
        return _save(fig, Path(out_png))
    labels, first_parent, last_parent, first_child = [], [], [], []
    for parent, child in pairs:
        for dataset, _, fold in sorted(k for k in by_key if k[1] == child and (k[0], parent, k[2]) in by_key):
            p, c = by_key[(dataset, parent, fold)].epochs, by_key[(dataset, child, fold)].epochs
            labels.append(f"{dataset}\n{child} fold {fold}")
            first_parent.append(float(p["train_losses"].iloc[0]))
            last_parent.append(float(p["train_losses"].iloc[-1]))
            first_child.append(float(c["train_losses"].iloc[0]))
    x = np.arange(len(labels))
    parent_name = pairs[0][0] if len({p for p, _ in pairs}) == 1 else "parent (k3)"
    child_name = pairs[0][1] if len({c for _, c in pairs}) == 1 else "child (k5)"
    for offset, values, label, colour in (
        (-0.27, first_parent, f"{parent_name}: first epoch (random start)", "tab:gray"),
        (0.0, last_parent, f"{parent_name}: last epoch", "tab:blue"),
        (0.27, first_child, f"{child_name}: first epoch (UpKern from {parent_name})", "tab:orange"),
    ):
        bars = ax.bar(x + offset, values, 0.27, label=label, color=colour)
        ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
    ax.set_xticks(x, labels)
    ax.set_ylabel("mean training loss of the epoch\n(CE + negative soft Dice; lower is better)")
    ax.axhline(0, color="k", linewidth=0.8)
    datasets = {log.dataset for log in logs}
    caveat = ("\nGenerated demo data: no claim about the paper's UpKern gain." if all(map(_is_generated, datasets))
              else "\nThe gain from UpKern is Table 1's ablation (MedNeXt-B_k5 vs MedNeXt-B_k5_scratch), not this picture.")
    ax.set_title("UpKern start: first-epoch training loss of the kernel-5 run beside its kernel-3 parent\n"
                 "A k5 first epoch near the parent's last epoch, far below the parent's random start, shows the "
                 "weights were transferred." + caveat, fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    values = first_parent + last_parent + first_child
    span = max(values) - min(min(values), 0.0) or 1.0
    ax.set_ylim(min(0.0, min(values)) - 0.1 * span, max(0.0, max(values)) + 0.45 * span)
    fig.tight_layout()
    return _save(fig, Path(out_png))


def write_run_figures(runs: Sequence[tuple[str, str, int, str | Path]], metrics_csvs: Sequence[str | Path],
                       out_dir: str | Path) -> list[Path]:
    """All three figures into ``out_dir``; ``runs`` are (dataset, network, fold, checkpoint_final.pth)."""
    from mednext.evaluation.results import read_results

    logs = [read_training_log(path, dataset, network, int(fold)) for dataset, network, fold, path in runs]
    metrics = read_results(metrics_csvs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [plot_training_curves(logs, out_dir / CURVES_PNG), plot_per_class_dsc(metrics, out_dir / PER_CLASS_PNG),
            plot_upkern_first_epoch(logs, out_dir / UPKERN_PNG)]
