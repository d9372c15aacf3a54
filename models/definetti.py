"""defiNETti's Python API, ``train()`` and ``test()``, on the core's training step.

A facade of :mod:`dlutil.models.definetti` (the same objects).
"""
from dlutil.models.definetti import (log, FORMAT, log_probabilities, cross_entropy, l2,
                                     classification_accuracy, LOSSES, DefinettiModel, model_file,
                                     train, save, load, test)
