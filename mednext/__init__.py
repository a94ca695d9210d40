"""Reproduction suite for *MedNeXt: Transformer-driven Scaling of ConvNets for Medical Image
Segmentation* (Roy et al., MICCAI 2023)."""

__version__ = "0.1.0"
