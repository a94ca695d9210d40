"""Datasets: registry, download, conversion to nnU-Net raw, fixed 5-fold splits and a synthetic demo set.

Paper §3 (datasets): BTCV, AMOS22, KiTS19 and BraTS21, each trained with nnU-Net-style 5-fold
cross-validation. Import the submodules directly (``mednext.data.registry`` etc.).
"""
