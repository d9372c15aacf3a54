"""DeepSEA (Zhou & Troyanskaya 2015) and its ready models.

A facade of :mod:`dlutil.models.deepsea` (the same objects).
"""
from dlutil.models.deepsea import (DeepSEA, TRAINING, DeepSEAMultiClass, DeepSEAMultiLabel,
                                   DeepSEARegression)
