"""Provenance of a training or an evaluation: which code, config, packages and machine made a number.

Every reproduced number can name its origin: each training writes ``provenance.json``
into its nnU-Net fold folder and each evaluation one beside its ``metrics.csv``. A record holds the
git commit and dirty flag of this repository, hashes of the workflow config, the resolved values the
job received, package versions, host and GPU model(s), UTC start/end and wall time, epochs completed
(nnU-Net's ``current_epoch`` in the checkpoint), resumes, and the hash of the fold's ``recipe.json``.

No credentials or home paths leave the process: the environment is never dumped, every string is
scrubbed of the user's home directory (-> ``~``) and of the value of any environment variable whose
name looks like a secret (``TOKEN``, ``SECRET``, ``PASSWORD``, ``KEY``, ``AUTH`` ...).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mednext.atomic import atomic_write_text

PROVENANCE_FILE = "provenance.json"
RECIPE_FILE = "recipe.json"
SCHEMA_VERSION = 1
#: Environment variables through which the workflow tells its jobs which config they run under.
ENV_CONFIG_SHA256 = "MEDNEXT_CONFIG_SHA256"
ENV_CONFIG_FILE_SHA256 = "MEDNEXT_CONFIG_FILE_SHA256"
#: Names of environment variables whose values must never reach a provenance file.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|AUTH|CREDENTIAL|COOKIE|SESSION", re.IGNORECASE)
#: Secret values shorter than this are not scrubbed (replacing "1" everywhere would garble numbers).
MIN_SECRET_LENGTH = 4
REDACTED = "<redacted>"
#: Packages whose versions decide the numerics (network, trainer, metrics, image I/O) or the workflow.
PACKAGES: tuple[str, ...] = ("torch", "nnunetv2", "monai", "snakemake", "numpy", "SimpleITK")
#: Checkpoints nnU-Net v2 writes into a fold folder; each stores ``current_epoch`` = epochs completed.
CHECKPOINTS: tuple[str, ...] = ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth")
REPO_DIR = Path(__file__).resolve().parents[1]

log = logging.getLogger(__name__)


class ProvenanceError(ValueError):
    """A provenance or recipe file that cannot be read; the message names the file."""


# -- small facts -------------------------------------------------------------------------------
def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """``2026-12-01T04:30:00Z`` (UTC, whole seconds)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal content gives equal text (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _git(args: Sequence[str], repo: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(repo: str | Path = REPO_DIR) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the git work tree whose top is ``repo``.

    ``None`` when ``repo`` is not the top of a work tree (an installed copy, no git, a tarball), so a
    surrounding repository is never reported as ours. Dirty: tracked changes or untracked,
    not-ignored files (``git status --porcelain``).
    """
    repo = Path(repo)
    top = _git(["rev-parse", "--show-toplevel"], repo)
    if top is None or Path(top.strip()).resolve() != repo.resolve():
        return {"commit": None, "dirty": None}
    commit = _git(["rev-parse", "HEAD"], repo)
    status = _git(["status", "--porcelain"], repo)
    return {"commit": commit.strip() if commit else None, "dirty": None if status is None else bool(status.strip())}


def package_versions() -> dict[str, str | None]:
    """Python, the :data:`PACKAGES` (``None`` when not installed), torch's CUDA and cuDNN (``None`` without a GPU)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["cuda"] = versions["cudnn"] = None
    try:
        import torch

        if torch.cuda.is_available():  # a CPU run's numbers do not depend on torch's CUDA build
            versions["cuda"] = torch.version.cuda
            if torch.backends.cudnn.is_available():
                versions["cudnn"] = str(torch.backends.cudnn.version())
    except ImportError:
        pass
    return versions


def gpu_models() -> list[str]:
    """Names of the CUDA devices this process sees (empty without CUDA).

    Call it after a training subprocess ends: it initialises CUDA in this process.
    """
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except (ImportError, RuntimeError):
        return []


def machine() -> dict[str, Any]:
    """Host name and GPU model(s)."""
    return {"host": socket.gethostname(), "gpus": gpu_models()}


def config_env(config: Mapping[str, Any], config_file: str | Path | None) -> dict[str, str]:
    """Environment for the workflow's jobs: hash of the resolved config and of the config file.

    The workflow exports these (``common.smk``) instead of passing them as rule parameters, so a
    config change outside a rule's own values never marks its outputs as outdated.
    """
    env = {ENV_CONFIG_SHA256: sha256_text(canonical_json(config))}
    if config_file is not None and Path(config_file).is_file():
        env[ENV_CONFIG_FILE_SHA256] = file_sha256(config_file)
    return env


def config_hashes(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """``config_hash`` (resolved config) and ``config_file_hash`` the workflow exported (``None`` outside it)."""
    environ = os.environ if environ is None else environ
    return {"config_hash": environ.get(ENV_CONFIG_SHA256) or None,
            "config_file_hash": environ.get(ENV_CONFIG_FILE_SHA256) or None}


def epochs_completed(fold_dir: str | Path) -> int | None:
    """Epochs a fold has completed: the largest ``current_epoch`` of its checkpoints (``None`` without one).

    nnU-Net v2 saves ``current_epoch + 1`` after an epoch (``save_checkpoint``) and the final
    checkpoint after undoing its last increment (``on_train_end``), so the stored value is the number
    of finished epochs.
    """
    from mednext.nnunet.checkpoints import load_nnunet_checkpoint

    found: list[int] = []
    for name in CHECKPOINTS:
        path = Path(fold_dir) / name
        if path.is_file():
            try:
                epoch = load_nnunet_checkpoint(path).get("current_epoch")
            except Exception as error:  # a truncated checkpoint is a fact to record, not a crash
                raise ProvenanceError(f"{path}: cannot read the checkpoint's current_epoch ({error})") from None
            if epoch is not None:
                found.append(int(epoch))
    return max(found) if found else None


def read_recipe(folder: str | Path, environ: Mapping[str, str] | None = None) -> Any | None:
    """The recipe card in ``folder/recipe.json``, scrubbed (:func:`scrub`); ``None`` if absent.

    The card names checkpoint paths (the UpKern parent), which may lie under the home directory.
    """
    path = Path(folder) / RECIPE_FILE
    if not path.is_file():
        return None
    card = _load_json(path, "JSON recipe card")
    return scrub(card, home_dirs(environ), secret_values(environ))


def _load_json(path: Path, what: str) -> Any:
    """The JSON in ``path``; :class:`ProvenanceError` naming the file and ``what`` it should hold."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ProvenanceError(f"{path}: not a readable {what} ({error})") from None


def recipe_hash(folder: str | Path, environ: Mapping[str, str] | None = None) -> str | None:
    """SHA-256 of the canonical JSON of the scrubbed recipe card (:func:`read_recipe`); ``None`` if absent.

    Equal to the hash of the copy beside the metrics, and independent of the JSON layout.
    """
    card = read_recipe(folder, environ)
    return None if card is None else sha256_text(canonical_json(card))


# -- scrubbing ---------------------------------------------------------------------------------
def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose name looks like a secret, longest first."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def home_dirs(environ: Mapping[str, str] | None = None) -> list[str]:
    """The user's home directory as ``$HOME`` and as the password database give it (never ``/``)."""
    environ = os.environ if environ is None else environ
    homes = {environ.get("HOME", "")}
    try:
        homes.add(str(Path.home()))
    except RuntimeError:
        pass
    homes = {h.rstrip("/") for h in homes if h}
    homes |= {str(Path(h).resolve()) for h in homes if Path(h).exists()}
    return sorted((h for h in homes if h not in ("", "/")), key=len, reverse=True)


def scrub(value: Any, homes: Sequence[str], secrets: Sequence[str]) -> Any:
    """``value`` with every secret replaced by :data:`REDACTED` and every home prefix by ``~`` (keys too)."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        for home in homes:
            value = re.sub(re.escape(home) + r"(?![\w.-])", "~", value)
        return value
    if isinstance(value, Mapping):
        return {scrub(str(k), homes, secrets): scrub(v, homes, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, homes, secrets) for v in value]
    return value


# -- reading and writing -----------------------------------------------------------------------
def read_provenance(path: str | Path) -> dict[str, Any] | None:
    """The record in ``path`` (``None`` when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return None
    record = _load_json(path, "provenance file")
    if not isinstance(record, dict):
        raise ProvenanceError(f"{path}: a provenance file holds a JSON object, found {type(record).__name__}")
    return record


def write_provenance(path: str | Path, record: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path:
    """Scrub ``record`` (:func:`scrub`) and write it as indented JSON, atomically."""
    clean = scrub(dict(record), home_dirs(environ), secret_values(environ))
    return atomic_write_text(path, json.dumps(clean, indent=2, sort_keys=False, default=str) + "\n")


def environment_facts(repo: str | Path = REPO_DIR, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What every record shares: git state, config hashes, package versions, host and GPUs."""
    return {"git": git_state(repo), **config_hashes(environ), "packages": package_versions(), **machine()}


# -- training ----------------------------------------------------------------------------------
def _closed_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier runs; one still marked ``running`` was killed (SLURM time limit, node failure)."""
    return [{**r, "status": "interrupted"} if r.get("status") == "running" else r for r in runs]


def training_summary(record: dict[str, Any]) -> dict[str, Any]:
    """Recompute the totals of a training record from its ``runs``: first start, last end, resumes, wall time."""
    runs = record["runs"]
    record["started"] = runs[0]["started"] if runs else None
    record["finished"] = next((r["finished"] for r in reversed(runs) if r.get("finished")), None)
    record["resumes"] = sum(1 for r in runs if r["action"] == "continue")
    record["wall_s"] = round(sum(r.get("wall_s") or 0.0 for r in runs), 3)
    return record


def training_events(fold_dir: str | Path) -> dict[str, Any]:
    """What the trainer's watches recorded in the fold folder: the epoch-100 rescue (``rescue``) and the
    divergence guard's stop (``divergence``), each ``None`` when it did not happen."""
    from mednext.nnunet.divergence import DivergenceMarkerError, read_marker
    from mednext.nnunet.rescue import read_rescue_record

    rescue = read_rescue_record(fold_dir)
    try:
        divergence = read_marker(fold_dir)
    except DivergenceMarkerError as error:
        log.warning("provenance: %s", error)
        divergence = None
    return {"rescue": None if rescue is None else rescue.as_dict(),
            "divergence": None if divergence is None else json.loads(divergence.to_json())}


class TrainingProvenance:
    """The ``provenance.json`` of one fold folder across its runs (fresh start, resumes, validation-only).

    A fresh start begins a new record (earlier runs trained other weights); ``continue`` and
    ``validate`` append a run, keeping the first start time. ``resumes`` counts ``continue`` runs.
    """

    def __init__(self, fold_dir: str | Path, identity: Mapping[str, Any], job: Mapping[str, Any],
                 repo: str | Path = REPO_DIR, environ: Mapping[str, str] | None = None) -> None:
        self.fold_dir = Path(fold_dir)
        self.path = self.fold_dir / PROVENANCE_FILE
        self.identity = dict(identity)
        self.job = dict(job)
        self.repo = repo
        self.environ = environ
        self.record: dict[str, Any] = {}
        self._start: datetime | None = None
        self.created_fold_dir = False

    def discard_if_nothing_ran(self) -> bool:
        """Remove this record, and the fold folder it created, when nothing else was written there.

        A run refused before nnU-Net started (e.g. an UpKern start whose parent checkpoint is missing)
        leaves no fold folder behind, as before provenance existed; returns whether it removed them.
        """
        if not self.created_fold_dir or not self.fold_dir.is_dir():
            return False
        if {p.name for p in self.fold_dir.iterdir()} - {PROVENANCE_FILE}:
            return False
        self.path.unlink(missing_ok=True)
        self.fold_dir.rmdir()
        return True

    def begin(self, action: str) -> None:
        """Record a run that starts now with ``action`` (``fresh``, ``continue``, ``validate``) as ``running``."""
        try:
            previous = read_provenance(self.path) if action != "fresh" else None
        except ProvenanceError as error:  # never block a training: start a new record, say why
            log.warning("provenance: %s; starting a new record", error)
            previous = None
        runs = _closed_runs(list(previous.get("runs", []))) if previous else []
        self.created_fold_dir = not self.fold_dir.exists()
        self._start = utc_now()
        git = git_state(self.repo)
        runs.append({"action": action, "status": "running", "started": iso(self._start), "finished": None,
                     "wall_s": None, "git_commit": git["commit"], "git_dirty": git["dirty"], "host": socket.gethostname()})
        self.record = {"kind": "training", "schema": SCHEMA_VERSION, **self.identity, "job": self.job,
                       "git": git, **config_hashes(self.environ), "packages": package_versions(),
                       "host": socket.gethostname(), "gpus": [], "epochs_completed": (previous or {}).get("epochs_completed"),
                       "recipe_hash": None, "runs": runs}
        self._write()

    def end(self, action: str, status: str) -> None:
        """Close the current run (``ok`` or ``failed``) with the action actually taken; refresh totals."""
        if self._start is None:
            raise RuntimeError("TrainingProvenance.end() before begin()")
        finished = utc_now()
        last = self.record["runs"][-1]
        last.update(action=action, status=status, finished=iso(finished),
                    wall_s=round((finished - self._start).total_seconds(), 3))
        self.record["gpus"] = gpu_models()
        for key, read in (("epochs_completed", epochs_completed), ("recipe_hash", recipe_hash)):
            try:
                self.record[key] = read(self.fold_dir)
            except ProvenanceError as error:  # never fail (or mask the failure of) the training itself
                log.warning("provenance: %s", error)
                self.record[key] = None
        self.record.update(training_events(self.fold_dir))
        self._write()

    def _write(self) -> None:
        write_provenance(self.path, training_summary(self.record), self.environ)


@contextmanager
def training_provenance(fold_dir: str | Path, action: str, identity: Mapping[str, Any], job: Mapping[str, Any],
                        repo: str | Path = REPO_DIR, environ: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
    """Write the fold's provenance around a training run.

    Yields a dict whose ``"action"`` the caller may overwrite with what the run really did. Nothing
    is written for ``done`` (no run happened). A raised exception closes the run as ``failed``.
    """
    outcome = {"action": action}
    if action == "done":
        yield outcome
        return
    tracker = TrainingProvenance(fold_dir, identity, job, repo, environ)
    tracker.begin(action)
    try:
        yield outcome
    except BaseException:
        if not tracker.discard_if_nothing_ran():
            tracker.end(outcome["action"], "failed")
        raise
    tracker.end(outcome["action"], "ok")


# -- evaluation --------------------------------------------------------------------------------
def evaluation_record(identity: Mapping[str, Any], job: Mapping[str, Any], started: datetime, finished: datetime,
                      fold_dir: str | Path | None, recomputed: bool, repo: str | Path = REPO_DIR,
                      environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The record of one evaluation; it embeds the training's record from ``fold_dir`` when there is one."""
    training = read_provenance(Path(fold_dir) / PROVENANCE_FILE) if fold_dir is not None else None
    return {"kind": "evaluation", "schema": SCHEMA_VERSION, **identity, "job": dict(job),
            "metrics_recomputed": recomputed, **environment_facts(repo, environ),
            "started": iso(started), "finished": iso(finished), "wall_s": round((finished - started).total_seconds(), 3),
            "recipe_hash": recipe_hash(fold_dir) if fold_dir is not None else None, "training": training}


def write_evaluation_provenance(metrics_csv: str | Path, record: Mapping[str, Any], fold_dir: str | Path | None,
                                environ: Mapping[str, str] | None = None) -> Path:
    """``provenance.json`` beside ``metrics_csv``, and the fold's ``recipe.json`` (scrubbed) when it has one."""
    out_dir = Path(metrics_csv).parent
    card = read_recipe(fold_dir, environ) if fold_dir is not None else None
    if card is not None:
        atomic_write_text(out_dir / RECIPE_FILE, json.dumps(card, indent=2) + "\n")
    return write_provenance(out_dir / PROVENANCE_FILE, record, environ)
