"""Per-case marks for the project's own commands, installed by :mod:`mednext.rehearsal_probe`.

``python -m mednext.rehearsal_probe STAGE -- COMMAND ARGS`` runs ``mednext-repro COMMAND ARGS``
(exactly what the DAG job runs) after :func:`install` wrapped the functions that handle one case in a per-case mark
(:mod:`mednext.rehearsal.markers`): conversion's validate/write pair, nnU-Net's fingerprint
``analyze_case`` and preprocessing ``run_case_save`` (which run in nnU-Net's worker pool), and
evaluation's ``score_case``. The wrappers call the original functions unchanged; they only time them
and read the process's peak memory. nnU-Net starts its workers with ``spawn``, which imports this
entry module again in every worker (as ``__mp_main__``), which installs the same wrappers there
when :data:`ENV_STAGE` names the stage. The parent measures the whole tree
(:func:`mednext.rehearsal.measure.run_measured`).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

from mednext.rehearsal import markers

#: The stage whose wrappers a (worker) process installs on import.
ENV_STAGE = "MEDNEXT_REHEARSAL_STAGE"
STAGES = ("convert", "plan", "splits", "evaluate", "summarize", "tables")


def _spanned(stage: str, function: Callable[..., Any], case_of: Callable[..., str],
             detail_of: Callable[..., str] | None = None) -> Callable[..., Any]:
    @functools.wraps(function)
    def marked(*args: Any, **kwargs: Any) -> Any:
        detail = detail_of(*args, **kwargs) if detail_of is not None else ""
        with markers.case_span(stage, case_of(*args, **kwargs), detail=detail):
            return function(*args, **kwargs)
    marked.__wrapped_by_rehearsal__ = True  # type: ignore[attr-defined]
    return marked


def _already(function: object) -> bool:
    return getattr(function, "__wrapped_by_rehearsal__", False)


def _name_of_file(path: object) -> str:
    name = os.path.basename(str(path))
    for ending in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.endswith(ending):
            return name[: -len(ending)]
    return name


def install_convert_marks() -> None:
    """Conversion (and own-dataset validation): one mark from a case's validation to its last file written."""
    from mednext.data import convert

    if _already(convert.validate_case):
        return
    validate, write = convert.validate_case, convert._write_case
    open_spans: dict[str, tuple[float, bool]] = {}

    @functools.wraps(validate)
    def marked_validate(case, spec):  # type: ignore[no-untyped-def]
        open_spans[case.case_id] = (time.time(), markers.current_rss_mb(), markers.reset_peak_rss())
        return validate(case, spec)

    @functools.wraps(write)
    def marked_write(case, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = write(case, *args, **kwargs)
        _close(case.case_id)
        return result

    def _close(case_id: str) -> None:
        start, rss_at_start, exact = open_spans.pop(case_id, (time.time(), None, False))
        end = time.time()
        markers.write_mark({"kind": "case", "stage": "convert", "case": case_id, "pid": os.getpid(), "start": start,
                            "end": end, "wall_s": end - start, "peak_mb": markers.peak_rss_mb(),
                            "rss_at_start_mb": rss_at_start, "exact_peak": exact})

    marked_validate.__wrapped_by_rehearsal__ = True  # type: ignore[attr-defined]
    convert.validate_case = marked_validate
    convert._write_case = marked_write
    # An own dataset is validated without being written: close its span when validation returns.
    from mednext.data import own_dataset

    @functools.wraps(own_dataset._validate_cases)
    def marked_cases(folder, cases, spec, cache_dir):  # type: ignore[no-untyped-def]
        for case in cases:  # what the original does when nothing is cached (link-raw caches nothing)
            try:
                convert.validate_case(case, spec)
            except convert.ConversionError as error:
                raise own_dataset.OwnDatasetError(f"{error.path or case.label}: {error}", error.path or case.label) from None
            _close(case.case_id)

    own_dataset._validate_cases = marked_cases


def install_plan_marks() -> None:
    """nnU-Net's fingerprint and preprocessing, per case (in the workers), and the main process's phases."""
    from nnunetv2.experiment_planning import plan_and_preprocess_api as api
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import DatasetFingerprintExtractor
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

    if _already(DatasetFingerprintExtractor.analyze_case):
        return
    analyze = DatasetFingerprintExtractor.analyze_case
    marked_analyze = _spanned("fingerprint", analyze, lambda image_files, *a, **k: _name_of_file(image_files[0])[:-5])
    # pickled by reference (nnU-Net hands it to its pool): keep the name it is found under
    marked_analyze.__qualname__ = "DatasetFingerprintExtractor.analyze_case"
    marked_analyze.__module__ = DatasetFingerprintExtractor.__module__
    DatasetFingerprintExtractor.analyze_case = staticmethod(marked_analyze)

    save = DefaultPreprocessor.run_case_save

    def case_of_save(self, output_filename_truncated, *args, **kwargs):  # type: ignore[no-untyped-def]
        return os.path.basename(str(output_filename_truncated))

    def configuration_of_save(self, output_filename_truncated, image_files, seg_file, plans_manager,
                              configuration_manager, *args, **kwargs):  # type: ignore[no-untyped-def]
        return str(configuration_manager.data_identifier)

    DefaultPreprocessor.run_case_save = _spanned("preprocess", save, case_of_save, configuration_of_save)

    run = DefaultPreprocessor.run

    @functools.wraps(run)
    def phased_run(self, dataset_name_or_id, configuration_name, plans_identifier, num_processes):  # type: ignore[no-untyped-def]
        with markers.phase_span("plan", f"preprocess {configuration_name}"):
            return run(self, dataset_name_or_id, configuration_name, plans_identifier, num_processes)

    DefaultPreprocessor.run = phased_run
    fingerprint = api.extract_fingerprint_dataset

    @functools.wraps(fingerprint)
    def phased_fingerprint(*args, **kwargs):  # type: ignore[no-untyped-def]
        with markers.phase_span("plan", "fingerprint"):
            return fingerprint(*args, **kwargs)

    api.extract_fingerprint_dataset = phased_fingerprint
    from mednext.nnunet.planning import FixedPatchPlanner1mm

    plan = FixedPatchPlanner1mm.plan_experiment

    @functools.wraps(plan)
    def phased_plan(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with markers.phase_span("plan", "planning"):
            return plan(self, *args, **kwargs)

    FixedPatchPlanner1mm.plan_experiment = phased_plan


def install_evaluate_marks() -> None:
    """Evaluation: one mark per scored case (DSC, surface Dice, HD95 of every region)."""
    from mednext.evaluation import results

    if _already(results.score_case):
        return
    results.score_case = _spanned("evaluate", results.score_case, lambda gt_path, *a, **k: _name_of_file(gt_path))


INSTALLERS: dict[str, Callable[[], None]] = {
    "convert": install_convert_marks, "plan": install_plan_marks, "evaluate": install_evaluate_marks,
}


def install(stage: str) -> None:
    """Install the per-case marks of ``stage`` in this process (stages without cases have none)."""
    installer = INSTALLERS.get(stage)
    if installer is not None:
        installer()
