"""Rehearsal of the paper run at real size (``mednext-repro rehearse``): every stage of the configured
grid measured on a few real-size cases, extrapolated to each job of the DAG, and compared with what
the job will request; the measurements become the workflow's calibration.

Import the submodules directly (``mednext.rehearsal.measure`` etc.).
"""
