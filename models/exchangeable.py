"""Exchangeable (permutation-invariant) networks f(X) = h(g(φ(x₁), …, φ(xₙ))), as in defiNETti.

A facade of :mod:`dlutil.models.exchangeable` (the same objects).
"""
from dlutil.models.exchangeable import (DataShapeError, LAYERS, POOLS, HEADS, parse_layer, parse_g,
                                        check_shapes, ExchangeableNetwork, ExchangeableClassifier,
                                        ExchangeableRegressor)
from dlutil.models.definetti import test, train  # the seed's API, also importable from here
