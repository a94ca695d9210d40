"""Evaluation: DSC, surface Dice at a tolerance, HD95 and volumes per case and region (paper §3),
equal to DeepMind ``surface-distance``; tidy CSV results and summaries; test-set ensemble
prediction, challenge packaging and leaderboard records.

Modules: :mod:`~mednext.evaluation.surface` (surface distances), :mod:`~mednext.evaluation.bbox`
(label bounding boxes), :mod:`~mednext.evaluation.metrics` (per-case metrics, regions, empty-mask
conventions), :mod:`~mednext.evaluation.io` (reading/checking NIfTI), :mod:`~mednext.evaluation.results`
(folder scoring, CSV, summaries), :mod:`~mednext.evaluation.ensemble`,
:mod:`~mednext.evaluation.submission`, :mod:`~mednext.evaluation.leaderboard`,
:mod:`~mednext.evaluation.phantoms` (synthetic label maps).
"""
