"""Regeneration of the paper's tables, reproduced beside reported."""
