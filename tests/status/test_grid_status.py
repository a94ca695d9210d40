"""``mednext-repro status`` on the demo grid: rows for every training of the config, filters, CSV, picture, ETA."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mednext.cli import main
from mednext.provenance import TrainingProvenance
from mednext.runs import Run
from mednext.status.grid_status import collect_status
from mednext.workflow.config_source import DEMO_CONFIG, load_workflow_config
from mednext.workflow.grid import all_runs
from mednext.workflow.layout import Layout
from mednext.workflow.resources import training_hours
from tests.status.nnunet_log_writer import NnunetLogWriter

EPOCH_S = 30.0


@pytest.fixture
def demo_tree(tmp_path: Path) -> tuple[Path, Path, dict]:
    """The demo config with relative paths, run from ``tmp_path``: nnU-Net fold 0 evaluated, MedNeXt-S_k3
    fold 0 running at epoch 2 of 6, everything else untouched."""
    config_file = tmp_path / "demo.yaml"
    config_file.write_text(DEMO_CONFIG.read_text())
    config = load_workflow_config(config_file)  # the schema's defaults filled, as the workflow sees it
    layout = Layout.from_config(config)
    for run, epochs in ((Run("synthetic", "nnUNet", 0), 6), (Run("synthetic", "MedNeXt-S_k3", 0), 2)):
        fold = tmp_path / Path(layout.checkpoint(run)).parent
        writer = NnunetLogWriter(fold, datetime.now() - timedelta(seconds=epochs * EPOCH_S), epoch_seconds=EPOCH_S)
        for epoch in range(epochs):
            writer.epoch(epoch, [0.8, 0.7, 0.9])
        tracker = TrainingProvenance(fold, {"network": run.network}, {"device": "cpu"})
        tracker.begin("fresh")
        if epochs == 6:
            tracker.end("fresh", "ok")
            (fold / "checkpoint_final.pth").write_bytes(b"")
            metrics = tmp_path / layout.metrics(run)
            metrics.parent.mkdir(parents=True)
            metrics.write_text("case,dsc\n")
        (fold / "checkpoint_latest.pth").write_bytes(b"")
    return tmp_path, config_file, config


def test_one_row_per_training_of_the_config(demo_tree: tuple[Path, Path, dict]) -> None:
    workdir, _, config = demo_tree
    status = collect_status(config, workdir, gpus=1)
    assert [(r.dataset, r.network, r.fold) for r in status.rows] == [
        ("synthetic", n, f) for n in ("nnUNet", "MedNeXt-S_k3", "MedNeXt-S_k5", "MedNeXt-B_k3_standard_resampling")
        for f in (0, 1)]  # the config's order: networks, then the ablation
    assert len(status.rows) == len(all_runs(config)) == 8
    state = {(r.network, r.fold): r.state for r in status.rows}
    assert state == {("nnUNet", 0): "evaluated", ("nnUNet", 1): "not_started", ("MedNeXt-S_k3", 0): "running",
                     ("MedNeXt-S_k3", 1): "not_started", ("MedNeXt-S_k5", 0): "waiting", ("MedNeXt-S_k5", 1): "waiting",
                     ("MedNeXt-B_k3_standard_resampling", 0): "not_started",
                     ("MedNeXt-B_k3_standard_resampling", 1): "not_started"}
    running = next(r for r in status.rows if r.state == "running")
    assert (running.epochs_done, running.epochs, running.epoch_seconds) == (2, 6, EPOCH_S)
    assert running.hours_left == pytest.approx(4 * EPOCH_S / 3600)
    assert running.ema_pseudo_dice == pytest.approx(0.8)


def test_eta_follows_upkern_order_and_gpu_count(demo_tree: tuple[Path, Path, dict]) -> None:
    workdir, _, config = demo_tree
    one = collect_status(config, workdir, gpus=1)
    many = collect_status(config, workdir, gpus=8)
    left = {(r.network, r.fold): r.hours_left for r in many.rows}
    # an unmeasured network runs as much slower than its estimate as the measured ones do (median ratio)
    ratio = statistics.median(EPOCH_S / (training_hours(n, config) * 3600 / 6) for n in ("nnUNet", "MedNeXt-S_k3"))
    assert left[("MedNeXt-S_k5", 1)] == pytest.approx(ratio * training_hours("MedNeXt-S_k5", config))
    assert left[("MedNeXt-S_k3", 1)] == pytest.approx(6 * EPOCH_S / 3600)  # measured on its fold 0
    # with a slot each, the longest UpKern chain sets the end: S k3 fold 1 (6 epochs), then S k5 fold 1
    assert many.eta_hours == pytest.approx(left[("MedNeXt-S_k3", 1)] + left[("MedNeXt-S_k5", 1)])
    assert one.eta_hours == pytest.approx(sum(v for v in left.values()))  # one slot: all in a row
    assert one.blocked == 0


def test_command_filters_writes_csv_and_picture(demo_tree: tuple[Path, Path, dict], capsys) -> None:
    workdir, config_file, _ = demo_tree
    csv, png = workdir / "status.csv", workdir / "grid_status.png"
    assert main(["status", "--config", str(config_file), "--workdir", str(workdir), "--no-squeue",
                 "--state", "waiting", "--state", "running", "--csv", str(csv), "--picture", str(png)]) == 0
    out = capsys.readouterr().out
    assert "synthetic  (3 trainings: 1 running, 2 waiting)" in out
    assert "epoch 3 of 6, attempt 1" in out and "waits for MedNeXt-S_k3 (UpKern start)" in out
    assert "grid: 8 trainings: 2 waiting, 4 not_started, 1 running, 1 evaluated" in out
    table = pd.read_csv(csv)
    assert sorted(table["state"]) == ["running", "waiting", "waiting"]
    assert list(table.columns)[:5] == ["dataset", "network", "fold", "state", "detail"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_state_filter_is_refused(demo_tree: tuple[Path, Path, dict]) -> None:
    workdir, config_file, _ = demo_tree
    with pytest.raises(SystemExit, match="unknown state"):
        main(["status", "--config", str(config_file), "--workdir", str(workdir), "--state", "stuck"])
