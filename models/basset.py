"""Basset (Kelley, Snoek & Rinn 2016) and its ready models.

A facade of :mod:`dlutil.models.basset` (the same objects).
"""
from dlutil.models.basset import (Basset, TRAINING, BassetMultiClass, BassetMultiLabel,
                                  BassetRegression)
