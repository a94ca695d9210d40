"""MedNeXt v1 network: blocks, the encoder-decoder and the Table 1 variants."""

from mednext.network.mednext_v1 import MedNeXt
from mednext.network.variants import KERNEL_SIZES, VARIANTS, MedNeXtVariant, create_mednext_v1, get_variant

__all__ = ["KERNEL_SIZES", "VARIANTS", "MedNeXt", "MedNeXtVariant", "create_mednext_v1", "get_variant"]
