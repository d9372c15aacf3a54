"""DanQ (Quang & Xie 2016) and its ready models.

A facade of :mod:`dlutil.models.danq` (the same objects).
"""
from dlutil.models.danq import (DanQ, TRAINING, DanQMultiClass, DanQMultiLabel, DanQRegression)
