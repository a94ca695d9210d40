"""Statistics behind every reproduced cell, as pure functions on tidy per-case frames.

- :mod:`mednext.statistics.cases`: per-case matrices (cases x regions) out of the tidy results.
- :mod:`mednext.statistics.aggregate`: the official pooled cross-validation mean, the fold spread
  and the bootstrap CI of the headline value.
- :mod:`mednext.statistics.bootstrap`: vectorised, fold-stratified bootstrap weights and percentile CIs.
- :mod:`mednext.statistics.paired`: paired comparisons on the same validation cases (mean difference,
  bootstrap CI, Wilcoxon signed-rank p, Holm correction within each table).
"""
