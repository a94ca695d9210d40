"""Every network of config/paper.yaml runs the official recipe, or a listed deviation.

Cards are built from real trainers (no training) on a CT stand-in planned with the paper's plans and
registered under KiTS19's id and name, so the per-dataset lr override applies. The expected values
are ``paper_tables/reported/official_recipe.csv`` (each row cites the official MedNeXt file it was
read from); a difference passes only when ``deviations.csv`` lists it with both values.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from _nnunet_support import set_nnunet_env

from mednext.cli import main
from mednext.data.registry import get_dataset
from mednext.data.synthetic import write_synthetic_dataset
from mednext.networks import get_network
from mednext.nnunet.planning import v1_batch_dice
from mednext.nnunet.job_settings import TrainingJob, TrainingSettings
from mednext.nnunet.recipe import RECIPE_ITEMS, recipe_for_plans
from mednext.nnunet.recipe_parity import compare_card, load_deviations, load_official

ROOT = Path(__file__).resolve().parents[2]
REPORTED = ROOT / "paper_tables" / "reported"
KITS = get_dataset("kits19")


def paper_networks() -> list[str]:
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    return list(dict.fromkeys([*config["networks"], *config.get("ablations", {}).get("networks", [])]))


@pytest.fixture(scope="module")
def plans_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small CT stand-in as Dataset040_KiTS19, planned with the paper defaults (plans only)."""
    with pytest.MonkeyPatch.context() as mp:
        dirs = set_nnunet_env(mp, tmp_path_factory.mktemp("recipe"))
        write_synthetic_dataset(dirs["nnUNet_raw"], dataset_id=KITS.dataset_id, name=KITS.nnunet_name, n_cases=2,
                                shape=(12, 40, 40))
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["plan", "--dataset", str(KITS.dataset_id), "--no-preprocess", "--num-processes", "1"]) == 0
        yield dirs["nnUNet_preprocessed"] / KITS.folder_name / "nnUNetPlans_1mm.json"


@pytest.fixture(scope="module")
def cards(plans_file: Path) -> dict[str, dict]:
    return {name: recipe_for_plans(plans_file, name, fold=0, device="cuda") for name in paper_networks()}


@pytest.fixture(scope="module")
def rules(plans_file: Path) -> dict[str, bool]:
    fingerprint = json.loads((plans_file.parent / "dataset_fingerprint.json").read_text())
    return {"v1_two_stage": v1_batch_dice(fingerprint["spacings"], fingerprint["shapes_after_crop"])}


def test_every_paper_network_matches_official_or_listed_deviation(cards: dict[str, dict], rules: dict[str, bool]) -> None:
    official = load_official(REPORTED / "official_recipe.csv")
    deviations = load_deviations(REPORTED / "deviations.csv")
    unlisted, unknown, used = [], [], set()
    for card in cards.values():
        differences, missing, rows = compare_card(card, official, deviations, RECIPE_ITEMS, KITS.key, rules)
        unlisted += [str(d) for d in differences if not d.listed]
        unknown += [f"{card['network']}: {item}" for item in missing]
        used |= rows
    assert not unknown, "card items without an official value in official_recipe.csv:\n" + "\n".join(unknown)
    assert not unlisted, "differences from the official recipe not listed in deviations.csv:\n" + "\n".join(unlisted)
    stale = [f"{r.item}/{r.network_family}" for i, r in deviations.iterrows() if i not in used]
    assert not stale, f"deviations.csv rows that no longer differ (remove them): {stale}"


def test_recipe_values_read_from_the_trainers(cards: dict[str, dict]) -> None:
    """Key values of real trainers' cards against the official numbers (MedNeXt nnUNetTrainerV2_MedNeXt.py,
    nnUNetTrainerV2.py and the 1 mm planner; docs/sources.md#recipe-optimizer, #recipe-lr, #recipe-plans)."""
    b5 = cards["MedNeXt-B_k5"]
    assert (b5["optimizer"], b5["lr"], b5["eps"], b5["weight_decay"]) == ("AdamW", 1e-4, 1e-4, 3e-5)  # KiTS19 k5
    assert b5["deep_supervision_weights"] == pytest.approx([w / 31 for w in (16, 8, 4, 2, 1)])
    assert (b5["batch_size"], b5["patch_size"], b5["target_spacing_mm"]) == (2, [128] * 3, [1.0] * 3)
    assert b5["compile"] is False and b5["amp"] is True
    assert b5["upkern_parent"] == "MedNeXt-B_k3"
    assert b5["upkern_parent_checkpoint"].endswith(
        f"{KITS.folder_name}/{get_network('MedNeXt-B_k3').trainer_name}__nnUNetPlans_1mm__3d_fullres/fold_0/checkpoint_final.pth")
    assert cards["MedNeXt-B_k3"]["lr"] == 1e-3  # the override is kernel-5 only
    nn = cards["nnUNet"]
    assert (nn["optimizer"], nn["lr"], nn["momentum"], nn["nesterov"]) == ("SGD", 1e-2, 0.99, True)
    assert cards["MedNeXt-L_k3"]["gradient_checkpointing"] is True and b5["gradient_checkpointing"] is False


def test_an_unlisted_change_fails(cards: dict[str, dict], rules: dict[str, bool]) -> None:
    """The checker itself: one value changed without a deviation row is reported, by network and item."""
    official = load_official(REPORTED / "official_recipe.csv")
    deviations = load_deviations(REPORTED / "deviations.csv")
    changed = {**cards["MedNeXt-S_k3"], "eps": 1e-8}
    differences, _, _ = compare_card(changed, official, deviations, RECIPE_ITEMS, KITS.key, rules)
    assert [str(d) for d in differences if not d.listed] == [
        "MedNeXt-S_k3: eps = 1e-08, official 0.0001 (NOT listed in deviations.csv)"]


def test_compile_follows_the_switch_on_cuda_only(plans_file: Path) -> None:
    """nnU-Net's own _do_i_compile decides: on with the switch on CUDA, never on the CPU."""
    job = TrainingJob(TrainingSettings.paper().replace(compile=True), "kits19")
    assert recipe_for_plans(plans_file, "MedNeXt-S_k3", device="cuda", job=job)["compile"] is True
    assert recipe_for_plans(plans_file, "MedNeXt-S_k3", device="cpu", job=job)["compile"] is False
    assert recipe_for_plans(plans_file, "MedNeXt-S_k3", device="cuda")["compile"] is False  # the official protocol


def test_recipe_command_json_and_text(plans_file: Path, cards: dict[str, dict], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipe", "--plans", str(plans_file), "--network", "MedNeXt-B_k5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == cards["MedNeXt-B_k5"]
    assert main(["recipe", "--plans", str(plans_file), "--network", "nnUNet"]) == 0
    text = capsys.readouterr().out
    assert "optimizer" in text and "SGD" in text and "nesterov" in text
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
