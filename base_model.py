"""The models a def.py builds on: ``from base_model import ClassificationModel``.

A facade: the training loop lives in :mod:`dlutil.training`. ``class Model(BaseModel)`` (or one of
the ready task models) builds its network, criterion and optimizer in ``init_model(self)`` from
``self.config`` and hands them to ``super().init_model(...)``.
"""
from dlutil.errors import DataShapeError, LabelShapeError
from dlutil.training.model import BaseModel
from dlutil.training.networks import ConvClassificationNetwork, ConvRegressionNetwork
from dlutil.training.tasks import ClassificationModel, MultiLabelModel, RegressionModel, TaskModel

__all__ = ['BaseModel', 'TaskModel', 'ClassificationModel', 'RegressionModel', 'MultiLabelModel',
           'ConvClassificationNetwork', 'ConvRegressionNetwork', 'DataShapeError',
           'LabelShapeError']
