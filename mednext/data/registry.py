"""Registry of the paper's datasets (§3) and the synthetic demo set, as frozen dataclasses.

One entry per dataset holds everything the download, conversion, evaluation and workflow code needs:
where the files come from (URL, Zenodo record or Synapse id), licence, credential need, the training
case count the paper used (BTCV 30, AMOS22 200 CT, KiTS19 210, BraTS21 1251), channel names, label
names in nnU-Net order with the remap from the source values, evaluation regions, a fixed
nnU-Net dataset id, and the geometry of its training cases (what a rehearsal writes stand-ins at).
Facts and their sources: docs/sources.md#datasets, #dataset-geometry and #official-evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mednext.data.errors import UnknownDatasetError
from mednext.data.geometry import CaseGeometry, GeometryProfile, uniform_profile
from mednext.data.layouts import (
    KITS19_TRAIN_CASES,
    RawCase,
    amos22_case_files,
    amos22_cases,
    brats21_case_files,
    brats21_cases,
    btcv_case_files,
    btcv_cases,
    kits19_case_files,
    kits19_cases,
)
from mednext.vocabulary import CONVENTIONS, NAN_IS_1, NAN_SKIPPED

#: Environment variable holding a Synapse personal access token (never logged, never stored).
SYNAPSE_TOKEN_ENV = "SYNAPSE_AUTH_TOKEN"

ZENODO = "https://zenodo.org"
SYNAPSE_REPO = "https://repo-prod.prod.sagebase.org"
HUGGINGFACE = "https://huggingface.co"
GITHUB = "https://github.com"

#: neheller/kits19 commit whose ``data/case_*/segmentation.nii.gz`` hold the 210 training labels
#: (2026-05: images moved to the Hugging Face dataset below; labels are plain git blobs, no LFS).
KITS19_COMMIT = "456b293435b25303bbc7995f094f83a0afdff0eb"


@dataclass(frozen=True)
class SourceFile:
    """One file to fetch into ``downloads/<dataset>/files/<filename>``.

    At most one of ``url`` or ``synapse_id`` is set; with neither, the file's Synapse entity id is not
    recorded and must be given at download time (or the file placed by hand from ``page``).
    ``md5`` is a checksum published by the host;
    ``zenodo_record`` means the host publishes one in its record metadata (looked up at download
    time); with neither, the SHA-256 of the first download is recorded in a lock file and enforced
    afterwards. Archives (``.zip``/``.tar``/``.tar.gz``) are extracted into the source tree, dropping
    ``strip_prefix``; any other file is placed at ``place_at`` inside the source tree.
    """

    filename: str
    url: str | None = None
    synapse_id: str | None = None
    zenodo_record: str | None = None
    md5: str | None = None
    strip_prefix: str = ""
    place_at: str | None = None
    page: str | None = None

    def __post_init__(self) -> None:
        if self.url is not None and self.synapse_id is not None:
            raise ValueError(f"{self.filename}: set at most one of url or synapse_id")
        if not self.is_archive and self.place_at is None:
            raise ValueError(f"{self.filename}: a non-archive file needs place_at")

    @property
    def is_archive(self) -> bool:
        return self.filename.endswith((".zip", ".tar", ".tar.gz", ".tgz"))


@dataclass(frozen=True)
class Region:
    """An evaluation region: the union of the given nnU-Net label values (docs/sources.md#official-evaluation).

    ``in_mean``: counted in the mean over classes that the paper's tables report; a region the
    official evaluation did not score (the KiTS19 kidney+tumor composite) is reported beside it only.
    """

    name: str
    labels: tuple[int, ...]
    in_mean: bool = True


@dataclass(frozen=True)
class DatasetSpec:
    """Everything known about one dataset; ``labels[i]`` is the name of nnU-Net label value ``i``."""

    key: str
    title: str
    dataset_id: int
    nnunet_name: str
    modality: str
    channel_names: tuple[str, ...]
    labels: tuple[str, ...]
    source_label_values: tuple[int, ...]
    regions: tuple[Region, ...]
    expected_training_cases: int
    licence: str
    homepage: str
    files: tuple[SourceFile, ...] = ()
    label_remap: tuple[tuple[int, int], ...] = ()
    credential_env: str | None = None
    notes: str = ""
    #: An existing nnU-Net v2 raw folder the dataset is linked from instead of downloaded (a config's
    #: own dataset, :mod:`mednext.data.own_dataset`).
    nnunet_raw: str | None = None
    #: Finds the training cases in the unpacked source tree (:mod:`mednext.data.layouts`).
    layout: Callable[[Path], list[RawCase]] | None = None
    #: Writes the dataset instead of downloading it: ``generate(raw_root, spec, n_cases)`` -> its folder.
    generate: Callable[[Path, DatasetSpec, int], Path] | None = None
    #: Challenge submission naming: (regex over a test case id, file name template with ``\1`` groups).
    #: Labels are mapped back to the source values by :meth:`inverse_remap` where the remap is not identity.
    submission_naming: tuple[str, str] | None = None
    #: Shapes and spacings of the training cases, with their public source (rehearsal stand-ins;
    #: docs/sources.md#dataset-geometry).
    geometry: GeometryProfile | None = None
    #: Where the source layout keeps case ``index``: ``case_files(source_root, index)`` (the inverse of
    #: ``layout``; stand-ins are written there).
    case_files: Callable[[Path, int], RawCase] | None = None
    #: How a region absent from both masks enters the cross-validation mean (:data:`mednext.vocabulary.CONVENTIONS`):
    #: the first convention gives the tables' headline value, a second one is computed and shown beside it.
    empty_region_conventions: tuple[str, ...] = (NAN_SKIPPED,)
    #: Where a headline convention other than ``nan_skipped`` comes from (public source).
    convention_source: str = ""

    def __post_init__(self) -> None:
        conventions = self.empty_region_conventions
        unknown = [c for c in conventions if c not in CONVENTIONS]
        if unknown or not 1 <= len(conventions) <= 2 or len(set(conventions)) != len(conventions):
            raise ValueError(f"dataset {self.key!r}: empty_region_conventions must be one or two of "
                             f"{sorted(CONVENTIONS)}, found {list(conventions)}")
        if conventions[0] != NAN_SKIPPED and not self.convention_source:
            raise ValueError(f"dataset {self.key!r}: headline convention {conventions[0]!r} needs its convention_source")

    @property
    def folder_name(self) -> str:
        """nnU-Net raw/preprocessed folder name, e.g. ``Dataset017_BTCV``."""
        return f"Dataset{self.dataset_id:03d}_{self.nnunet_name}"

    @property
    def needs_credentials(self) -> bool:
        return self.credential_env is not None

    @property
    def num_classes(self) -> int:
        """Number of output classes including background."""
        return len(self.labels)

    def label_dict(self) -> dict[str, int]:
        """``dataset.json`` ``labels`` mapping (name -> nnU-Net value)."""
        return {name: value for value, name in enumerate(self.labels)}

    def channel_dict(self) -> dict[str, str]:
        """``dataset.json`` ``channel_names`` mapping ("0" -> "CT", ...)."""
        return {str(i): name for i, name in enumerate(self.channel_names)}

    def inverse_remap(self) -> dict[int, int] | None:
        """nnU-Net label value -> source label value (what a challenge expects back); None for identity."""
        inverse = {target: source for source, target in self.remap().items()}
        return None if all(k == v for k, v in inverse.items()) else inverse

    def remap(self) -> dict[int, int]:
        """Source label value -> nnU-Net label value (identity where not remapped)."""
        table = {v: v for v in self.source_label_values}
        table.update(dict(self.label_remap))
        return table


def _btcv() -> DatasetSpec:
    return DatasetSpec(
        key="btcv",
        title="BTCV: Multi-Atlas Labeling Beyond the Cranial Vault (abdomen)",
        dataset_id=17,
        nnunet_name="BTCV",
        modality="CT",
        channel_names=("CT",),
        labels=(
            "background", "spleen", "right_kidney", "left_kidney", "gallbladder", "esophagus", "liver",
            "stomach", "aorta", "inferior_vena_cava", "portal_and_splenic_vein", "pancreas",
            "right_adrenal_gland", "left_adrenal_gland",
        ),
        source_label_values=tuple(range(14)),
        regions=tuple(Region(n, (i,)) for i, n in enumerate((
            "spleen", "right_kidney", "left_kidney", "gallbladder", "esophagus", "liver", "stomach", "aorta",
            "inferior_vena_cava", "portal_and_splenic_vein", "pancreas", "right_adrenal_gland",
            "left_adrenal_gland"), start=1)),
        expected_training_cases=30,
        licence="Challenge terms on Synapse (registration and acceptance required); no CC licence published",
        homepage="https://www.synapse.org/#!Synapse:syn3193805/wiki/217789",
        files=(SourceFile("RawData.zip", synapse_id="syn3379050",
                          page="https://www.synapse.org/#!Synapse:syn3379050"),),
        credential_env=SYNAPSE_TOKEN_ENV,
        layout=btcv_cases,
        case_files=btcv_case_files,
        submission_naming=(r"^img(\d{4})$", r"label\1.nii.gz"),  # the Synapse label files' naming (unchecked)
        geometry=GeometryProfile(
            smallest=CaseGeometry((85, 512, 512), (3.3, 0.547, 0.547), "smallest stated: 512x512x85, ~280 mm field of view"),
            median=CaseGeometry((128, 512, 512), (3.0, 0.7578, 0.7578), "median of the training cases (nnU-Net plans)"),
            largest=CaseGeometry((198, 512, 512), (3.28, 0.977, 0.977), "largest stated: 512x512x198, ~500x500x650 mm"),
            slices=(85, 198), inplane_spacing_mm=(0.54, 0.98), slice_spacing_mm=(2.5, 5.0),
            source="challenge page (Synapse syn3193805, wiki 217752, quoted in MONAI's BTCV tutorials): volumes "
                   "512x512x85 to 512x512x198, fields of view ~280x280x280 to 500x500x650 mm3, in-plane 0.54-0.98 mm, "
                   "slices 2.5-5.0 mm; median from published nnU-Net v2 plans of the 30 training cases "
                   "(aitechlabcn/neUNet neUNet_utils/plan_json/nnUNetPlans_BTCV.json: 128x512x512 at 3.0x0.758x0.758 mm)",
            assumed="slice spacing of the smallest and largest case: the stated field of view over the stated slice count",
        ),
        notes="Project syn3193805; RawData.zip is entity syn3379050 (public downloaders record md5 "
              "e8e3fc9604eadc34c47067e2332f8ea1; the download checks the md5 Synapse publishes). "
              "Layout RawData/Training/{img/img00XX,label/label00XX}.nii.gz; Test/ has no labels.",
    )


def _amos22() -> DatasetSpec:
    return DatasetSpec(
        key="amos22",
        title="AMOS22 task 1 (CT part of the training set)",
        dataset_id=222,
        nnunet_name="AMOS22CT",
        modality="CT",
        channel_names=("CT",),
        labels=(
            "background", "spleen", "right_kidney", "left_kidney", "gallbladder", "esophagus", "liver",
            "stomach", "aorta", "postcava", "pancreas", "right_adrenal_gland", "left_adrenal_gland",
            "duodenum", "bladder", "prostate_uterus",
        ),
        source_label_values=tuple(range(16)),
        regions=tuple(Region(n, (i,)) for i, n in enumerate((
            "spleen", "right_kidney", "left_kidney", "gallbladder", "esophagus", "liver", "stomach", "aorta",
            "postcava", "pancreas", "right_adrenal_gland", "left_adrenal_gland", "duodenum", "bladder",
            "prostate_uterus"), start=1)),
        expected_training_cases=200,
        licence="CC BY-NC-SA 4.0 per the OpenReview/Zenodo record (truncated in our copy: check the record)",
        homepage="https://zenodo.org/records/7155725",
        files=(SourceFile("amos22.zip", url=f"{ZENODO}/records/7155725/files/amos22.zip?download=1",
                          zenodo_record="7155725"),),
        layout=amos22_cases,
        case_files=amos22_case_files,
        geometry=GeometryProfile(
            smallest=CaseGeometry((56, 512, 512), (5.0, 0.547, 0.547), "assumed: 280 mm cube at the median slice spacing"),
            median=CaseGeometry((103, 512, 512), (5.0, 0.7129, 0.7129), "median (nnU-Net plans)"),
            largest=CaseGeometry((130, 512, 512), (5.0, 0.977, 0.977), "assumed: 500x500x650 mm at the median slice spacing"),
            slices=(56, 130), inplane_spacing_mm=(0.547, 0.977), slice_spacing_mm=(5.0, 5.0),
            source="median from nnU-Net v2 plans of AMOS 2022 as published by nnU-Net's authors (Dataset219_AMOS2022_"
                   "postChallenge_task2: 103x512x512 at 5.0x0.713x0.713 mm; that cohort adds 40 MRI to the 200 CT)",
            assumed="AMOS22 publishes no per-case geometry in the sources found: smallest and largest take the BTCV "
                    "page's field-of-view bounds (the same portal-venous abdominal CT) at AMOS22's median 5 mm slices "
                    "and a 512x512 matrix; a rehearsal on the real data replaces them",
        ),
        notes="imagesTr holds 240 cases: ids < 500 are CT (200), ids >= 500 MRI (40, excluded). No login.",
    )


def _kits19() -> DatasetSpec:
    images = tuple(
        SourceFile(
            f"case_{i:05d}.nii.gz",
            url=f"{HUGGINGFACE}/datasets/neheller/KiTS-Challenge-Imaging/resolve/main/images/case_{i:05d}.nii.gz",
            place_at=f"data/case_{i:05d}/imaging.nii.gz",
        )
        for i in range(KITS19_TRAIN_CASES)
    )
    labels = SourceFile(
        f"kits19-{KITS19_COMMIT}.zip",
        url=f"{GITHUB}/neheller/kits19/archive/{KITS19_COMMIT}.zip",
        strip_prefix=f"kits19-{KITS19_COMMIT}/",
    )
    return DatasetSpec(
        key="kits19",
        title="KiTS19: Kidney Tumor Segmentation Challenge 2019",
        dataset_id=40,
        nnunet_name="KiTS19",
        modality="CT",
        channel_names=("CT",),
        labels=("background", "kidney", "tumor"),
        source_label_values=(0, 1, 2),
        regions=(Region("kidney", (1,)), Region("tumor", (2,)), Region("kidney_and_tumor", (1, 2), in_mean=False)),
        expected_training_cases=KITS19_TRAIN_CASES,
        licence="Data CC BY-NC-SA 4.0 (kits19 data/LICENSE); starter code MIT",
        homepage="https://github.com/neheller/kits19",
        files=(labels, *images),
        layout=kits19_cases,
        case_files=kits19_case_files,
        submission_naming=(r"^case_(\d{5})$", r"prediction_\1.nii.gz"),
        geometry=GeometryProfile(
            smallest=CaseGeometry((53, 512, 512), (3.0, 0.546875, 0.546875), "case_00130"),
            median=CaseGeometry((738, 512, 512), (0.5, 0.7890625, 0.7890625), "case_00059"),
            largest=CaseGeometry((734, 512, 512), (1.0, 0.970703125, 0.970703125), "case_00165"),
            slices=(29, 1059), inplane_spacing_mm=(0.4375, 1.041), slice_spacing_mm=(0.5, 5.0),
            source="NIfTI headers of the 210 training labels (data/case_*/segmentation.nii.gz of neheller/kits19 at the "
                   "commit downloaded here): 29-1059 slices of 512x512 (one case 512x796), slices 0.5-5.0 mm, in-plane "
                   "0.4375-1.041 mm; smallest, median and largest case by voxels at 1 mm",
        ),
        notes="Labels are in the git repo (case_00000..00209); images from the Hugging Face dataset "
              "neheller/KiTS-Challenge-Imaging (no checksums published: recorded on first download). "
              "Cases 210-299 are the unlabelled test set and are not fetched. Official MedNeXt evaluates "
              "kidney=(1,) and tumor=(2,); the KiTS19 composite kidney+tumor=(1,2) is scored here too but "
              "left out of the mean over classes, so Table 2 averages the same two regions as the paper.",
    )


def _brats21() -> DatasetSpec:
    return DatasetSpec(
        key="brats21",
        title="BraTS 2021 task 1 (RSNA-ASNR-MICCAI) training data",
        dataset_id=137,
        nnunet_name="BraTS2021",
        modality="MRI",
        channel_names=("T1", "T1ce", "T2", "FLAIR"),
        labels=("background", "edema", "non_enhancing_and_necrosis", "enhancing_tumor"),
        source_label_values=(0, 1, 2, 4),
        label_remap=((1, 2), (2, 1), (4, 3)),
        regions=(Region("WT", (1, 2, 3)), Region("TC", (2, 3)), Region("ET", (3,))),
        expected_training_cases=1251,
        licence="BraTS 2021 data use agreement on Synapse (registration required); not confirmed as CC",
        homepage="https://www.synapse.org/#!Synapse:syn25829067",
        files=(SourceFile("RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021.tar",
                          page="https://www.synapse.org/#!Synapse:syn25829067/wiki/610863"),),
        credential_env=SYNAPSE_TOKEN_ENV,
        layout=brats21_cases,
        case_files=brats21_case_files,
        submission_naming=(r"^(BraTS2021_\d{5})$", r"\1.nii.gz"),  # labels mapped back 1->2, 2->1, 3->4
        geometry=uniform_profile(
            CaseGeometry((155, 240, 240), (1.0, 1.0, 1.0), "every case"),
            "BraTS 2021 paper (Baid et al., arXiv:2107.02314): every scan skull-stripped, co-registered to the SRI24 "
            "atlas and resampled to 1 mm isotropic, 240x240x155 voxels, four MRI channels"),
        # A region absent from both masks (often ET) counts as 1 in the headline, NaN-skipping beside it.
        empty_region_conventions=(NAN_IS_1, NAN_SKIPPED),
        convention_source="official MedNeXt nnunet_mednext/dataset_conversion/Task137_BraTS_2021.py L151 "
                          "(\"we are interested in the mean (nan is 1) column\"; it reads that row of the region-based "
                          "summary, nnunet_mednext/evaluation/region_based_evaluation.py L185-189)",
        notes="Source labels 1 NCR, 2 ED, 4 ET are remapped to nnU-Net order 2->1, 1->2, 4->3 (as nnU-Net "
              "Task043/137 and MedNeXt do; map back for submission). Channels _t1, _t1ce, _t2, _flair -> "
              "0000..0003. The Synapse entity id of the training tar is not recorded here: look it up on the "
              "project page and pass it with --synapse-id, or place the tar by hand. "
              "The same files are on Kaggle (RSNA-MICCAI release) for hand placement.",
    )


def _write_synthetic(raw_root: Path, spec: DatasetSpec, n_cases: int) -> Path:
    """The synthetic entry's generator (SimpleITK and scipy are imported only when it runs)."""
    from mednext.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(raw_root, dataset_id=spec.dataset_id, name=spec.nnunet_name, n_cases=n_cases)


def _synthetic() -> DatasetSpec:
    return DatasetSpec(
        key="synthetic",
        title="Synthetic abdominal-CT-like demo dataset",
        dataset_id=990,
        nnunet_name="SyntheticAbdomen",
        modality="CT",
        channel_names=("CT",),
        labels=("background", "liver", "spleen", "kidney"),
        source_label_values=(0, 1, 2, 3),
        regions=(Region("liver", (1,)), Region("spleen", (2,)), Region("kidney", (3,))),
        expected_training_cases=8,
        licence="CC0-1.0 (generated)",
        homepage="mednext.data.synthetic",
        generate=_write_synthetic,
        geometry=uniform_profile(CaseGeometry((14, 48, 48), (2.5, 0.8, 0.8), "every case"),
                                 "mednext.data.synthetic.write_synthetic_dataset defaults"),
        notes="Generated locally by mednext.data.synthetic.write_synthetic_dataset; nothing to download.",
    )


#: All datasets by key. Iteration order is the paper's table order, then the demo set.
DATASETS: dict[str, DatasetSpec] = {spec.key: spec for spec in (_btcv(), _amos22(), _kits19(), _brats21(), _synthetic())}

#: The four real datasets of the paper (§3).
PAPER_DATASETS: tuple[str, ...] = ("btcv", "amos22", "kits19", "brats21")


def get_dataset(name: str) -> DatasetSpec:
    """Look a dataset up by key (case-insensitive), nnU-Net folder name, or dataset id as text."""
    wanted = str(name).strip()
    lowered = wanted.lower()
    if lowered in DATASETS:
        return DATASETS[lowered]
    for spec in DATASETS.values():
        if wanted == spec.folder_name or wanted.lower() == spec.nnunet_name.lower() or (
            wanted.isdigit() and int(wanted) == spec.dataset_id
        ):
            return spec
    known = ", ".join(f"{s.key} ({s.folder_name})" for s in DATASETS.values())
    raise UnknownDatasetError(f"unknown dataset {name!r}; expected one of: {known}")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` (a config's own dataset) to :data:`DATASETS` for this process and return it.

    Registering the same spec again is a no-op; a key, folder or dataset id another entry already
    uses is an error (nnU-Net finds a dataset by its id alone).
    """
    if DATASETS.get(spec.key) == spec:
        return spec
    for other in DATASETS.values():
        if spec.key == other.key or spec.key == other.nnunet_name.lower() or spec.dataset_id == other.dataset_id:
            raise ValueError(f"dataset {spec.key!r} ({spec.folder_name}) clashes with registered dataset "
                             f"{other.key!r} ({other.folder_name}): choose another name or dataset id")
    DATASETS[spec.key] = spec
    return spec


def regions_outside_mean(name: str) -> frozenset[str]:
    """Region names of dataset ``name`` left out of the mean over classes; empty for an unknown name."""
    try:
        spec = get_dataset(name)
    except UnknownDatasetError:
        return frozenset()
    return frozenset(r.name for r in spec.regions if not r.in_mean)
