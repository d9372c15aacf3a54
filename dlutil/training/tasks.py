"""Ready models for the common tasks: the task supplies the criterion, the metrics and the reward.

    ClassificationModel   one class per example (cross-entropy; accuracy, AUROC)
    RegressionModel       real-valued outputs (MSE; MSE, Pearson)
    MultiLabelModel       independent binary tasks (binary cross-entropy; per-task AUROC, AUPRC)
"""
import numpy as np
import torch
import torch.nn.functional as F

from dlutil.errors import LabelShapeError
from dlutil.training import labels, metrics
from dlutil.training.model import BaseModel


def _parse_init_args(owner, args, criterion, optimizer, constraints):
    """``(network, optimizer[, constraints])`` or ``(network, criterion, optimizer[, …])``."""
    args = list(args)
    if args and not isinstance(args[0], torch.optim.Optimizer) and optimizer is None \
            and len(args) >= 2 and isinstance(args[1], torch.optim.Optimizer):
        criterion = args.pop(0)
    if args and optimizer is None:
        optimizer = args.pop(0)
    if args:
        constraints = args.pop(0)
    if args:
        raise TypeError(f'{owner}.init_model takes (network, optimizer, constraints=()) or '
                        f'(network, criterion, optimizer, constraints=()); got extra arguments')
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f'{owner}.init_model(network, optimizer, constraints=()): optimizer must '
                        f'be a torch.optim.Optimizer, got {type(optimizer).__name__}')
    return criterion, optimizer, constraints


class TaskModel(BaseModel):
    """A model whose task supplies the criterion, metrics and reward (−``val_loss``).

    ``init_model(network, optimizer, constraints=(), scheduler=None)``, or
    ``init_model(network, criterion, optimizer, …)`` to replace :meth:`default_criterion`.
    ``train_metrics`` are the ``eval_metrics`` of the training batches.
    """

    def init_model(self, network=None, *args, criterion=None, optimizer=None, constraints=(),
                   scheduler=None):
        if network is None:
            raise NotImplementedError(f'{type(self).__name__} must implement init_model(self)')
        criterion, optimizer, constraints = _parse_init_args(
            type(self).__name__, args, criterion, optimizer, constraints)
        super().init_model(network, criterion or self.default_criterion, optimizer,
                           constraints, scheduler)

    def default_criterion(self, y_true_t, y_pred_t):
        raise NotImplementedError

    def train_metrics(self, y_true, y_pred):
        return self.eval_metrics(y_true, y_pred)

    def get_hyperband_reward(self, result):
        return -result['val_loss']


class ClassificationModel(TaskModel):
    """Single-label classification with cross-entropy.

    The network returns ``{'y_pred': softmax, 'y_pred_loss': logits}`` (as
    :class:`ConvClassificationNetwork` does) or a plain logits tensor, shape=(n, C). Labels are
    class indices, shape=(n,) or (n, 1), or class probabilities / one-hot rows, shape=(n, C).
    Metrics: ``loss``, ``accuracy``, ``auroc`` (binary: probability of class 1; multi-class:
    macro one-vs-rest). Reward: −``val_loss``.
    """


    def cross_entropy(self, y_true_t, y_pred_t):
        logits = self.logits(y_pred_t)
        return F.cross_entropy(logits, self.class_targets(y_true_t, logits))

    default_criterion = cross_entropy

    @staticmethod
    def logits(y_pred_t):
        if isinstance(y_pred_t, dict):
            if 'y_pred_loss' not in y_pred_t:
                raise ValueError(f"a classification network returning a dict must include "
                                 f"'y_pred_loss' (logits); it has {sorted(y_pred_t)}")
            return y_pred_t['y_pred_loss']
        return y_pred_t

    def class_targets(self, y_true_t, logits):
        """Labels as class indices (long, shape (n,)) or probabilities (float, shape (n, C)).

        Every batch's labels are checked (:mod:`dlutil.training.labels`): on the CPU at once, on
        CUDA once per epoch, without a CPU-GPU sync per batch.
        """
        if logits.dim() != 2:
            raise LabelShapeError(f'a classification network must output shape (n, classes), '
                                  f'got {tuple(logits.shape)}')
        n, n_classes = logits.shape
        target, fault = labels.class_targets(y_true_t, n_classes, n)
        self.label_faults.add(fault, n_classes)
        return target

    @staticmethod
    def probabilities(y_pred):
        """Class probabilities, numpy shape=(n, C), from a dict output or logits."""
        if isinstance(y_pred, dict):
            return y_pred['y_pred']
        shifted = y_pred - y_pred.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)

    def eval_metrics(self, y_true, y_pred):
        probs = self.probabilities(y_pred)
        return {'accuracy': metrics.accuracy(y_true, probs), 'auroc': metrics.auroc(y_true, probs)}

    def prediction_output(self, y_pred):
        return self.probabilities(y_pred)


class RegressionModel(TaskModel):
    """Regression with mean squared error.

    Labels must hold as many values per row as the network's output (shape (n,) and (n, 1) are
    interchangeable). Metrics: ``loss``, ``mse``, ``pearson``. Reward: −``val_loss``.
    """


    def mse_loss(self, y_true_t, y_pred_t):
        y_pred_t = self.prediction_output(y_pred_t)
        if y_true_t.numel() != y_pred_t.numel():
            raise LabelShapeError(f'labels have shape {tuple(y_true_t.shape)} but the network '
                                  f'outputs {tuple(y_pred_t.shape)}; they must hold the same '
                                  f'number of values per row')
        return F.mse_loss(y_pred_t.float(), y_true_t.reshape(y_pred_t.shape).float())

    default_criterion = mse_loss

    def eval_metrics(self, y_true, y_pred):
        y_pred = self.prediction_output(y_pred)
        return {'mse': metrics.mse(y_true, y_pred), 'pearson': metrics.pearson(y_true, y_pred)}


class MultiLabelModel(TaskModel):
    """Independent binary tasks (multi-label): sigmoid + binary cross-entropy per task.

    The network returns logits, shape=(n, tasks) (or a dict with ``'y_pred_loss'`` logits); labels
    are 0/1, shape=(n, tasks). Metrics: ``loss``, mean ``auroc`` and ``auprc`` over the tasks
    where both classes occur, and per task ``auroc_<i>`` / ``auprc_<i>`` (``task_names``, if set,
    replaces the indices). Reward: −``val_loss``. Predictions are probabilities.
    """

    task_names = None


    def binary_cross_entropy(self, y_true_t, y_pred_t):
        logits = ClassificationModel.logits(y_pred_t)
        if tuple(y_true_t.shape) != tuple(logits.shape):
            if y_true_t.numel() != logits.numel():
                raise LabelShapeError(f'labels have shape {tuple(y_true_t.shape)} but the '
                                      f'network outputs {tuple(logits.shape)}; a multi-label '
                                      f'model needs one 0/1 label per task')
            y_true_t = y_true_t.reshape(logits.shape)
        return F.binary_cross_entropy_with_logits(logits.float(), y_true_t.float())

    default_criterion = binary_cross_entropy

    @staticmethod
    def probabilities(y_pred):
        logits = y_pred['y_pred_loss'] if isinstance(y_pred, dict) else y_pred
        return 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))

    def eval_metrics(self, y_true, y_pred):
        probs = self.probabilities(y_pred)
        auroc = metrics.multilabel_auroc(y_true, probs)
        auprc = metrics.multilabel_auprc(y_true, probs)
        names = self.task_names or [str(i) for i in range(len(auroc))]
        values = {'auroc': _nanmean(auroc), 'auprc': _nanmean(auprc)}
        if len(auroc) > 1:
            values.update({f'auroc_{name}': v for name, v in zip(names, auroc)})
            values.update({f'auprc_{name}': v for name, v in zip(names, auprc)})
        return values

    def prediction_output(self, y_pred):
        return self.probabilities(y_pred).astype(np.float32)


def _nanmean(values):
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.any(np.isfinite(values)) else float('nan')
