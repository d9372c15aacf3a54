"""The local-ancestry model: per-variant ancestry of one haplotype, trained as deepLAI trains.

A facade of :mod:`dlutil.models.local_ancestry` (the same objects).
"""
from dlutil.models.local_ancestry import (DataShapeError, LabelShapeError, one_hot_alleles,
                                          MODEL_DEFAULTS, mode_filter, ancestry_metrics,
                                          build_network, LocalAncestryModel)
