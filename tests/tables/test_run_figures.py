"""Run figures: nnU-Net's checkpoint log is read back as logged, per-class DSC is averaged right,
and the three PNGs are written through the ``figures`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from nnunetv2.training.logging.nnunet_logger import MetaLogger

from mednext.cli import main
from mednext.tables.run_figures import (
    FigureInputError,
    per_class_dsc,
    read_training_log,
    upkern_pairs,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _checkpoint(path: Path, train: list[float], val: list[float], dice: list[float]) -> Path:
    """A checkpoint whose ``logging`` is filled by nnU-Net's own logger (numpy scalars, as in training)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = MetaLogger(str(path.parent), resume=False)
    for epoch, (t, v, d) in enumerate(zip(train, val, dice)):
        logger.log("train_losses", np.float64(t), epoch)
        logger.log("val_losses", np.float64(v), epoch)
        logger.log("mean_fg_dice", np.float64(d), epoch)  # nnU-Net derives ema_fg_dice from it
    torch.save({"network_weights": {"w": torch.zeros(2)}, "logging": logger.get_checkpoint()}, path)
    return path


def _metrics(rows: list[tuple[str, int, str, str, float]]) -> pd.DataFrame:
    """Tidy rows (network, fold, case, class, dsc) in both spacing modes, plus an sdc row to ignore."""
    out = []
    for network, fold, case, cls, value in rows:
        for mode in ("physical", "paper"):
            out.append(["synthetic", network, fold, case, cls, "dsc", mode, value, 1.0])
        out.append(["synthetic", network, fold, case, cls, "sdc", "physical", 0.0, 1.0])
    return pd.DataFrame(out, columns=["dataset", "network", "fold", "case", "class", "metric", "spacing_mode", "value",
                                      "tolerance_mm"])


def test_training_log_is_read_from_the_checkpoint_with_nnunets_ema(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "checkpoint_final.pth", [1.0, 0.5, 0.2], [0.9, 0.6, 0.3], [0.1, 0.5, 0.9])
    log = read_training_log(ckpt, "synthetic", "MedNeXt-S_k3", 0)
    assert log.epochs["epoch"].tolist() == [0, 1, 2]
    assert log.epochs["train_losses"].tolist() == [1.0, 0.5, 0.2]
    assert log.epochs["val_losses"].tolist() == [0.9, 0.6, 0.3]
    # nnU-Net's EMA: first value itself, then 0.9 * previous + 0.1 * new
    assert log.epochs["ema_fg_dice"].tolist() == pytest.approx([0.1, 0.9 * 0.1 + 0.1 * 0.5, 0.9 * 0.14 + 0.1 * 0.9])


def test_missing_or_logless_checkpoint_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FigureInputError, match="nope.pth: checkpoint not found"):
        read_training_log(tmp_path / "nope.pth", "synthetic", "nnUNet", 0)
    torch.save({"network_weights": {}}, tmp_path / "bare.pth")
    with pytest.raises(FigureInputError, match="bare.pth: no nnU-Net training log"):
        read_training_log(tmp_path / "bare.pth", "synthetic", "nnUNet", 0)


def test_per_class_dsc_is_mean_over_cases_then_folds() -> None:
    frame = _metrics([
        ("nnUNet", 0, "a", "liver", 0.90), ("nnUNet", 0, "b", "liver", 0.70),  # fold 0 mean 80
        ("nnUNet", 1, "c", "liver", 1.00),                                     # fold 1 mean 100
        ("nnUNet", 0, "a", "spleen", 0.5), ("nnUNet", 1, "c", "spleen", np.nan),
    ])
    table = per_class_dsc(frame).set_index("class")
    assert table.loc["liver", "mean"] == pytest.approx(90.0)
    assert (table.loc["liver", "low"], table.loc["liver", "high"]) == pytest.approx((80.0, 100.0))
    assert table.loc["liver", "n_folds"] == 2
    assert table.loc["spleen", "mean"] == pytest.approx(50.0)  # an empty-empty NaN case is left out


def test_upkern_pairs_follow_the_registry() -> None:
    assert upkern_pairs(["nnUNet", "MedNeXt-S_k3", "MedNeXt-S_k5"]) == [("MedNeXt-S_k3", "MedNeXt-S_k5")]
    assert upkern_pairs(["MedNeXt-S_k5"]) == []  # the parent is not in the run


def test_command_writes_the_three_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = []
    for network, start in (("MedNeXt-S_k3", 1.0), ("MedNeXt-S_k5", 0.3)):
        for fold in (0, 1):
            path = _checkpoint(tmp_path / network / f"fold_{fold}.pth", [start, start / 2], [start, start / 2], [0.2, 0.6])
            runs += ["--run", "synthetic", network, str(fold), str(path)]
    metrics = tmp_path / "metrics.csv"
    _metrics([(n, f, f"c{f}", "liver", 0.8)
              for n in ("MedNeXt-S_k3", "MedNeXt-S_k5") for f in (0, 1)]).to_csv(metrics, index=False)
    assert main(["figures", *runs, "--metrics", str(metrics), "--out-dir", str(tmp_path / "figs")]) == 0
    written = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert written == ["per_class_dsc.png", "training_curves.png", "upkern_first_epoch.png"]
    for name in written:
        assert (tmp_path / "figs" / name).read_bytes()[:8] == PNG_MAGIC
    assert len(capsys.readouterr().out.splitlines()) == 3
