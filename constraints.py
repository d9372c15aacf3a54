"""Weight constraints applied after every optimizer step: ``from constraints import MaxNormConstraint``.

A facade: the constraints live in :mod:`dlutil.training.constraints`.
"""
from dlutil.training.constraints import Constraint, MaxNormConstraint

__all__ = ['Constraint', 'MaxNormConstraint']
