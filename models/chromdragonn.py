"""ChromDragoNN (Nair, Kim, Wu & Kundaje 2019) and its ready models.

A facade of :mod:`dlutil.models.chromdragonn` (the same objects).
"""
from dlutil.models.chromdragonn import (ResidualBlock, BLOCK_KERNELS, ChromDragoNN, TRAINING,
                                        ChromDragoNNMultiClass, ChromDragoNNMultiLabel,
                                        ChromDragoNNRegression)
