"""The paper's nnU-Net plans (§3.1): 1 mm isotropic spacing, 3D patches of 128³ at batch 2, 2D 512² at batch 14.

Kept apart from :mod:`mednext.nnunet.planning` (which imports nnU-Net and torch) so that the command
line can show them as defaults without importing either: every ``mednext-repro`` call builds the
whole parser, ``status`` on a login node included.
"""

from __future__ import annotations

PAPER_SPACING_MM: tuple[float, float, float] = (1.0, 1.0, 1.0)
PAPER_PATCH_3D: tuple[int, int, int] = (128, 128, 128)
PAPER_PATCH_2D: tuple[int, int] = (512, 512)
PAPER_BATCH_3D = 2
PAPER_BATCH_2D = 14
#: the nnU-Net configurations the paper trains: 3D full resolution, and 2D for TransUNet
CONFIGURATIONS: tuple[str, ...] = ("3d_fullres", "2d")
