"""Every network of config/paper.yaml runs the official recipe on each of the paper's datasets, or a listed deviation.

Cards are built from real trainers (no training) on plan-only stand-ins of BTCV, AMOS22, KiTS19 and
BraTS21 at their published geometry (``_standins.py``), planned by the project's planner, plus the
evaluation items read from the project's evaluation. The expected values are
``paper_tables/reported/official_recipe.csv``: the official MedNeXt code's values, per dataset where
they depend on it, each row citing the official file and line; nothing expected is computed with
the project's code. A difference passes only when ``deviations.csv`` lists it with both values.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _nnunet_support import set_nnunet_env
from _standins import plan_standin

from mednext.cli import main
from mednext.data.registry import get_dataset
from mednext.networks import get_network
from mednext.nnunet.job_settings import TrainingJob, TrainingSettings
from mednext.nnunet.recipe import RECIPE_ITEMS, recipe_for_plans, trainer_for_plans
from mednext.nnunet.recipe_parity import compare_card, load_deviations, load_official
from mednext.nnunet.recipe_probes import inference_averaging, mixed_precision, nearest_downsampling
from mednext.statistics.evaluation_card import EVALUATION_ITEMS, evaluation_card

ROOT = Path(__file__).resolve().parents[2]
REPORTED = ROOT / "paper_tables" / "reported"
KITS = get_dataset("kits19")
DATASETS = ("btcv", "amos22", "kits19", "brats21")
ITEMS = (*RECIPE_ITEMS, *EVALUATION_ITEMS)


def paper_networks() -> list[str]:
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    return list(dict.fromkeys([*config["networks"], *config.get("ablations", {}).get("networks", [])]))


@pytest.fixture(scope="module")
def plans_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The paper's plans of the four stand-ins (fingerprint-level inputs at real geometry, plans only)."""
    with pytest.MonkeyPatch.context() as mp:
        dirs = set_nnunet_env(mp, tmp_path_factory.mktemp("recipe"))
        yield {key: plan_standin(key, dirs["nnUNet_raw"], dirs["nnUNet_preprocessed"]) for key in DATASETS}


@pytest.fixture(scope="module")
def plans_file(plans_files: dict[str, Path]) -> Path:
    return plans_files["kits19"]


@functools.cache
def _evaluation_items(dataset: str) -> dict:
    return evaluation_card(dataset)


def full_card(plans: Path, network: str, **kwargs: object) -> dict:
    """What ``mednext-repro recipe --json`` prints: the trainer's card and the evaluation items."""
    card = recipe_for_plans(plans, network, **kwargs)
    return {**card, **_evaluation_items(card["dataset"])}


@pytest.fixture(scope="module")
def cards(plans_files: dict[str, Path]) -> dict[tuple[str, str], dict]:
    """(dataset key, network) -> the card of that run on CUDA."""
    return {(key, name): full_card(plans, name, fold=0, device="cuda")
            for key, plans in plans_files.items() for name in paper_networks()}


@pytest.fixture(scope="module")
def official() -> object:
    return load_official(REPORTED / "official_recipe.csv")


@pytest.fixture(scope="module")
def deviations() -> object:
    return load_deviations(REPORTED / "deviations.csv")


def unlisted(card: dict, official: object, deviations: object, dataset: str) -> list[str]:
    differences, _, _ = compare_card(card, official, deviations, ITEMS, dataset)
    return [str(d) for d in differences if not d.listed]


def test_every_paper_network_matches_official_or_listed_deviation(
        cards: dict[tuple[str, str], dict], official: object, deviations: object) -> None:
    problems, unknown, used = [], [], set()
    for (dataset, _), card in cards.items():
        differences, missing, rows = compare_card(card, official, deviations, ITEMS, dataset)
        problems += [f"{dataset} {d}" for d in differences if not d.listed]
        unknown += [f"{dataset} {card['network']}: {item}" for item in missing]
        used |= rows
    assert not unknown, "card items without an official value in official_recipe.csv:\n" + "\n".join(unknown)
    assert not problems, "differences from the official recipe not listed in deviations.csv:\n" + "\n".join(problems)
    stale = [f"{r['item']}/{r['network_family']}" for i, r in deviations.iterrows() if i not in used]
    assert not stale, f"deviations.csv rows that no longer differ (remove them): {stale}"


@pytest.mark.parametrize(("dataset", "batch_dice"), [("btcv", True), ("amos22", True), ("kits19", True), ("brats21", False)])
def test_batch_dice_follows_each_datasets_geometry(cards: dict[tuple[str, str], dict], dataset: str, batch_dice: bool) -> None:
    """The official planner's two-stage rule on the published geometry: three abdominal CTs over 8 patches
    of 128³ at 1 mm (two v1 stages, batch Dice), BraTS21 under 4 (one stage, sample Dice); 2D always batch."""
    for network in ("MedNeXt-L_k5", "nnUNet", "UNETR"):
        assert cards[(dataset, network)]["batch_dice"] is batch_dice, (dataset, network)
    assert cards[(dataset, "TransUNet")]["batch_dice"] is True


def test_mri_is_z_scored_inside_the_brain_mask(cards: dict[tuple[str, str], dict]) -> None:
    brats = cards[("brats21", "MedNeXt-L_k5")]
    assert brats["normalization"] == [f"{c}:ZScoreNormalization+mask" for c in ("T1", "T1ce", "T2", "FLAIR")]
    assert brats["eval_regions"] == [[1, 2, 3], [2, 3], [3]] and brats["empty_region_convention"] == "nan_is_1"
    assert cards[("btcv", "MedNeXt-L_k5")]["normalization"] == ["CT:CTNormalization"]


def test_recipe_values_read_from_the_trainers(cards: dict[tuple[str, str], dict]) -> None:
    """Key values of real trainers' cards against the official numbers (MedNeXt nnUNetTrainerV2_MedNeXt.py
    L26-41, nnUNetTrainerV2.py and the 1 mm planner; docs/sources.md#recipe-optimizer, #recipe-lr, #recipe-plans)."""
    b5 = cards[("kits19", "MedNeXt-B_k5")]
    assert (b5["optimizer"], b5["lr"], b5["eps"], b5["weight_decay"]) == ("AdamW", 1e-4, 1e-4, 3e-5)  # KiTS19 k5
    assert b5["deep_supervision_weights"] == pytest.approx([w / 31 for w in (16, 8, 4, 2, 1)])
    assert (b5["batch_size"], b5["patch_size"], b5["target_spacing_mm"]) == (2, [128] * 3, [1.0] * 3)
    assert b5["compile"] is False and b5["amp"] is True and b5["amp_grad_scaler"] is True
    assert b5["upkern_parent"] == "MedNeXt-B_k3"
    assert b5["upkern_parent_checkpoint"].endswith(
        f"{KITS.folder_name}/{get_network('MedNeXt-B_k3').trainer_name}__nnUNetPlans_1mm__3d_fullres/fold_0/checkpoint_final.pth")
    assert cards[("kits19", "MedNeXt-B_k3")]["lr"] == 1e-3  # the override is kernel-5 on KiTS19 only
    assert cards[("btcv", "MedNeXt-B_k5")]["lr"] == 1e-3
    nn = cards[("kits19", "nnUNet")]
    assert (nn["optimizer"], nn["lr"], nn["momentum"], nn["nesterov"]) == ("SGD", 1e-2, 0.99, True)
    assert cards[("kits19", "MedNeXt-L_k3")]["gradient_checkpointing"] is True and b5["gradient_checkpointing"] is False
    assert b5["aug_rotation_deg"] == [-30.0, 30.0] and cards[("kits19", "TransUNet")]["aug_rotation_deg"] == [-180.0, 180.0]
    assert b5["ds_target_scales"] == [[0.5 ** i] * 3 for i in range(5)] and cards[("kits19", "UNETR")]["ds_target_scales"] is None


def test_an_unlisted_change_fails(cards: dict[tuple[str, str], dict], official: object, deviations: object) -> None:
    """The checker itself: one value changed without a deviation row is reported, by network and item."""
    changed = {**cards[("kits19", "MedNeXt-S_k3")], "eps": 1e-8}
    assert unlisted(changed, official, deviations, "kits19") == [
        "MedNeXt-S_k3: eps = 1e-08, official 0.0001 (NOT listed in deviations.csv)"]


def test_a_changed_augmentation_is_read_from_the_pipeline_and_fails(
        plans_file: Path, official: object, deviations: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trainer whose training pipeline rotates half the samples (official 0.2) shows it on the card."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    built = nnUNetTrainer.get_training_transforms

    def more_rotation(*args: object, **kwargs: object) -> object:
        pipeline = built(*args, **kwargs)
        spatial = next(t for t in pipeline.transforms if type(t).__name__ == "SpatialTransform")
        spatial.p_rotation = 0.5
        return pipeline

    monkeypatch.setattr(nnUNetTrainer, "get_training_transforms", staticmethod(more_rotation))
    card = full_card(plans_file, "MedNeXt-S_k3", device="cuda")
    assert unlisted(card, official, deviations, "kits19") == [
        "MedNeXt-S_k3: aug_rotation_p = 0.5, official 0.2 (NOT listed in deviations.csv)"]


def test_mixed_precision_is_read_from_the_train_step(plans_file: Path, official: object, deviations: object) -> None:
    """nnU-Net's own train_step: autocast and grad scaler on CUDA, neither on the CPU; bf16 drops the
    scaler, which the parity check reports as an unlisted difference."""
    assert mixed_precision(trainer_for_plans(plans_file, "MedNeXt-S_k3", device="cuda")) == {
        "amp": True, "amp_autocast_device": "cuda", "amp_grad_scaler": True}
    assert mixed_precision(trainer_for_plans(plans_file, "MedNeXt-S_k3", device="cpu")) == {
        "amp": False, "amp_autocast_device": None, "amp_grad_scaler": False}
    bf16 = TrainingJob(TrainingSettings.paper().replace(autocast_dtype="bfloat16"), "kits19")
    card = full_card(plans_file, "MedNeXt-S_k3", device="cuda", job=bf16)
    assert unlisted(card, official, deviations, "kits19") == [
        "MedNeXt-S_k3: amp_dtype = 'bfloat16', official 'float16' (NOT listed in deviations.csv)",
        "MedNeXt-S_k3: amp_grad_scaler = False, official True (NOT listed in deviations.csv)"]


def test_the_precision_probe_is_not_counted_as_a_training_step(plans_file: Path) -> None:
    """The card is rewritten mid-training (after the rescue): its probe step must leave the divergence guard's
    streak and the iteration count as they were, or a NaN streak across the rescue would be forgotten."""
    trainer = trainer_for_plans(plans_file, "MedNeXt-S_k3", device="cpu")
    trainer.loss_guard.observe(float("nan"), epoch=100, iteration=7)
    trainer.iteration_in_epoch = 8
    mixed_precision(trainer)
    assert (trainer.loss_guard.consecutive, trainer.iteration_in_epoch) == (1, 8)


def test_inference_averaging_is_read_from_the_predictor(plans_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nnU-Net's predictor sums logits over tiles and mirrors; one that averaged probabilities reads as softmax."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    trainer = trainer_for_plans(plans_file, "MedNeXt-S_k3")
    assert inference_averaging(trainer) == "logits"
    logits_of = nnUNetPredictor._internal_maybe_mirror_and_predict

    def probabilities(self: nnUNetPredictor, x: torch.Tensor) -> torch.Tensor:
        mirrors = [self.network(x), torch.flip(self.network(torch.flip(x, (4,))), (4,))]
        return torch.stack([torch.softmax(m, 1) for m in mirrors]).mean(0)

    assert logits_of is not probabilities
    monkeypatch.setattr(nnUNetPredictor, "_internal_maybe_mirror_and_predict", probabilities)
    assert inference_averaging(trainer) == "softmax"


def test_deep_supervision_targets_pick_the_voxels_v1_picked() -> None:
    """v1 shrank targets with batchgenerators' order-0 resize_segmentation (official downsampling.py L87-103),
    v2 with torch's nearest-exact: the same voxels, the nearest centre's, odd sizes included; torch's
    legacy 'nearest' (floor) would not pass the card's check."""
    from batchgenerators.augmentations.utils import resize_segmentation
    from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
    from torch.nn.functional import interpolate

    rng = np.random.default_rng(1)
    for shape in ((32, 32, 32), (30, 33, 35)):
        seg = rng.integers(0, 4, size=shape).astype(np.int16)
        scales = [[0.5 ** i] * 3 for i in range(5)]
        v2 = DownsampleSegForDSTransform(scales)(segmentation=torch.from_numpy(seg)[None])["segmentation"]
        for scale, out in zip(scales[1:], v2[1:]):
            target = tuple(int(round(n * scale[0])) for n in shape)
            v1 = resize_segmentation(seg, target, order=0)
            assert np.array_equal(out[0].numpy(), v1) and np.array_equal(v1, nearest_downsampling(seg, target))
            floor = interpolate(torch.from_numpy(seg)[None, None].float(), target, mode="nearest")[0, 0].numpy()
            assert not np.array_equal(floor, nearest_downsampling(seg, target)), (shape, scale)


def test_evaluation_items_are_read_from_the_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed region or a mean of fold means would show on the card."""
    import mednext.statistics.evaluation_card as evaluation

    assert evaluation_card("kits19") == {"eval_regions": [[1], [2]], "cv_aggregation": "pooled cases",
                                         "empty_region_convention": "nan_skipped"}
    monkeypatch.setattr(evaluation, "dataset_regions", lambda key: {"kidney": (1, 2), "tumor": (2,)})
    assert evaluation.evaluated_regions("kits19") == [[1, 2], [2]]
    fold_means = evaluation.headlines

    def mean_of_fold_means(matrices: object, n_resamples: int = 0) -> object:
        rows = fold_means(matrices, n_resamples)
        return rows.assign(reproduced=rows["fold_mean"])

    monkeypatch.setattr(evaluation, "headlines", mean_of_fold_means)
    assert evaluation.headline_estimator("brats21") == ("mean of fold means", "nan_is_1")


def test_compile_follows_the_switch_on_cuda_only(plans_file: Path) -> None:
    """nnU-Net's own _do_i_compile decides: on with the switch on CUDA, never on the CPU."""
    job = TrainingJob(TrainingSettings.paper().replace(compile=True), "kits19")
    assert recipe_for_plans(plans_file, "MedNeXt-S_k3", device="cuda", job=job)["compile"] is True
    assert recipe_for_plans(plans_file, "MedNeXt-S_k3", device="cpu", job=job)["compile"] is False
    assert recipe_for_plans(plans_file, "MedNeXt-S_k3", device="cuda")["compile"] is False  # the official protocol


def test_recipe_command_json_and_text(plans_file: Path, cards: dict[tuple[str, str], dict],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipe", "--plans", str(plans_file), "--network", "MedNeXt-B_k5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == cards[("kits19", "MedNeXt-B_k5")]
    assert main(["recipe", "--plans", str(plans_file), "--network", "nnUNet"]) == 0
    text = capsys.readouterr().out
    assert "optimizer" in text and "SGD" in text and "nesterov" in text and "aug_lowres_upsampling" in text
    with pytest.raises(SystemExit, match="unknown network 'nope'"):
        main(["recipe", "--plans", str(plans_file), "--network", "nope"])


def test_switching_baseline_lr_shows_on_the_card(plans_file: Path) -> None:
    """DEVIATIONS.md 'Baseline learning rates': one override for every dataset, visible on the card."""
    assert recipe_for_plans(plans_file, "SwinUNETR")["lr"] == 1e-4  # the official 128³ trainer
    job = TrainingJob(TrainingSettings.paper().replace(lr_overrides={"*/SwinUNETR": 5e-4}), "kits19")
    assert recipe_for_plans(plans_file, "SwinUNETR", job=job)["lr"] == 5e-4
    assert recipe_for_plans(plans_file, "3D-UX-Net", job=job)["lr"] == 5e-4  # unchanged: its official value
    assert recipe_for_plans(plans_file, "MedNeXt-S_k5", job=job)["lr"] == 1e-4  # KiTS19 kernel 5 (§3.1)
    assert main(["recipe", "--plans", str(plans_file), "--network", "SwinUNETR", "--json",
                 "--set", 'lr_overrides={"*/SwinUNETR": 0.0005}']) == 0


@pytest.mark.parametrize(
    ("selector", "network", "family", "dataset", "expected"),
    [
        ("all", "UNETR", "baseline", None, 0),
        ("mednext", "MedNeXt-B_k5_scratch", "ablation", None, 1),  # ablations are MedNeXt runs
        ("baseline", "MedNeXt-B_k3", "mednext", None, None),
        ("MedNeXt-[ML]_*", "MedNeXt-M_k5", "mednext", None, 2),
        ("MedNeXt-[ML]_*", "MedNeXt-S_k5", "mednext", None, None),
        ("MedNeXt-?_k5*@kits19", "MedNeXt-S_k5", "mednext", "kits19", 12),
        ("MedNeXt-?_k5*@kits19", "MedNeXt-S_k5", "mednext", "btcv", None),
    ],
)
def test_selector_specificity(selector: str, network: str, family: str, dataset: str | None, expected: int | None) -> None:
    from mednext.nnunet.recipe_parity import specificity

    assert specificity(selector, network, family, dataset) == expected


def test_ratio_values_are_normalised() -> None:
    from mednext.nnunet.recipe_parity import parse_value, values_equal

    assert values_equal(parse_value("16:8:4:2:1"), [16 / 31, 8 / 31, 4 / 31, 2 / 31, 1 / 31])
    assert not values_equal(parse_value("true"), 1) and parse_value("null") is None


def _rehearsed_job(reserved_off_mb: float, setting: str = "auto") -> TrainingJob:
    """The job the workflow writes for MedNeXt-L_k3 when its calibration holds a GPU rehearsal (planted)."""
    runs = [{"gradient_checkpointing": True, "s_per_iteration": 1.0, "s_per_validation_iteration": 0.3,
             "max_allocated_mb": 16_000.0, "reserved_mb": 17_300.0},
            {"gradient_checkpointing": False, "s_per_iteration": 0.7, "s_per_validation_iteration": 0.3,
             "max_allocated_mb": reserved_off_mb - 1000, "reserved_mb": reserved_off_mb}]
    return TrainingJob(TrainingSettings.paper().replace(gradient_checkpointing=setting), "kits19",
                       gpu_rehearsal={"device": "NVIDIA H100 80GB HBM3", "memory_mb": 80_000.0, "margin": 1.15, "runs": runs})


def test_auto_gradient_checkpointing_follows_a_planted_gpu_rehearsal_on_the_recipe_card(plans_file: Path) -> None:
    fits = recipe_for_plans(plans_file, "MedNeXt-L_k3", device="cuda", job=_rehearsed_job(60_000.0))
    assert fits["gradient_checkpointing"] is False  # 60 GB x 1.15 = 69 GB fits the 80 GB the rehearsal ran on
    choice = fits["gradient_checkpointing_choice"]
    assert (choice["setting"], choice["measured_reserved_mb"], choice["device"], choice["margin"]) == (
        "auto", 60_000.0, "NVIDIA H100 80GB HBM3", 1.15)
    too_big = recipe_for_plans(plans_file, "MedNeXt-L_k3", device="cuda", job=_rehearsed_job(75_000.0))
    assert too_big["gradient_checkpointing"] is True  # 86 GB does not fit: the official setting stays
    forced = recipe_for_plans(plans_file, "MedNeXt-L_k3", device="cuda", job=_rehearsed_job(60_000.0, "on"))
    assert forced["gradient_checkpointing"] is True and forced["gradient_checkpointing_choice"]["setting"] == "on"
    assert recipe_for_plans(plans_file, "MedNeXt-L_k3", device="cuda")["gradient_checkpointing_choice"]["reason"].startswith(
        "network default")
