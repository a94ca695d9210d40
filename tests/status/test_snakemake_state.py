"""Snakemake's incomplete markers, written by Snakemake's own persistence code, are read back to their outputs."""

from __future__ import annotations

from pathlib import Path

from snakemake.persistence.file import FilePersistence

from mednext.status.snakemake_state import INCOMPLETE_DIR, incomplete_outputs, last_error_line


def _mark_incomplete(workdir: Path, output: str, job_id: str | None) -> None:
    """What ``FilePersistence.started`` does for one output (without a DAG behind it)."""
    persistence = object.__new__(FilePersistence)
    persistence._max_len = None
    persistence._incomplete_cache = None
    persistence._incomplete_path = str(workdir / INCOMPLETE_DIR)
    (workdir / INCOMPLETE_DIR).mkdir(parents=True, exist_ok=True)  # FilePersistence.__init__ creates it
    persistence._mark_incomplete(output, job_id)


def test_markers_name_their_outputs_and_cluster_jobs(tmp_path: Path) -> None:
    relative = ("work/nnUNet/nnUNet_results/Dataset017_BTCV/nnUNetTrainer_MedNeXt_B_k5__nnUNetPlans_1mm__3d_fullres/"
                "fold_2/checkpoint_final.pth")
    absolute = "/scratch/" + "deep/" * 60 + "checkpoint_final.pth"  # base64 longer than a file name: split by Snakemake
    _mark_incomplete(tmp_path, relative, "4711")
    _mark_incomplete(tmp_path, absolute, None)
    assert any(p.name.startswith("@") for p in (tmp_path / INCOMPLETE_DIR).rglob("*"))
    assert incomplete_outputs(tmp_path) == {(tmp_path / relative).resolve(): "4711", Path(absolute).resolve(): None}


def test_no_snakemake_folder_no_markers(tmp_path: Path) -> None:
    assert incomplete_outputs(tmp_path) == {}


def test_last_error_line_of_a_failed_train_job(tmp_path: Path) -> None:
    log = tmp_path / "fold_0.log"
    log.write_text(
        "2026-01-01 10:00:00.000000: Epoch 3\n"
        "Traceback (most recent call last):\n"
        '  File "mednext/nnunet/runner.py", line 170, in run_forwarding_signals\n'
        "    raise subprocess.CalledProcessError(returncode, cmd)\n"
        "subprocess.CalledProcessError: Command '['python', '-m', 'mednext.nnunet.train_entry']' "
        "died with <Signals.SIGKILL: 9>.\n"
    )
    assert last_error_line(log) == ("subprocess.CalledProcessError: Command '['python', '-m', 'mednext.nnunet.train_entry']' "
                                    "died with <Signals.SIGKILL: 9>.")
    slurm = tmp_path / "123.log"
    slurm.write_text("Epoch 12\nslurmstepd: error: Detected 1 oom_kill event in StepId=123.batch. Some of the step tasks "
                     "have been OOM Killed.\n")
    assert last_error_line(slurm).startswith("slurmstepd: error: Detected 1 oom_kill event")
    (tmp_path / "clean.log").write_text("INFO mednext.commands.train: train nnUNet fold 0: fresh\n")
    assert last_error_line(tmp_path / "clean.log") is None and last_error_line(tmp_path / "missing.log") is None
