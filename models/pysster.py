"""pysster's configurable sequence CNN (Budach & Marsico, Bioinformatics 2018), on our core.

A facade of :mod:`dlutil.models.pysster` (the same objects).
"""
from dlutil.models.pysster import (DataLayoutError, RecurrentLayer, PYSSTER_DEFAULTS, LAYOUT_KEYS,
                                   PADDINGS, GENERAL_KEYS, pysster_params, layer_lengths,
                                   check_lengths, PyssterNetwork, PyssterModel,
                                   PyssterMultiLabelModel, pysster_model_class)
