"""Metrics on numpy arrays, as the predefined models report them.

Each function takes ``y_true`` and ``y_pred`` as numpy arrays and returns a Python float. A metric
that is undefined on the data (AUROC with one class present, Pearson of a constant) is NaN, never
an exception: a validation set is allowed to be unlucky.
"""
import numpy as np

from dlutil.training.labels import class_indices


# sklearn is imported on first use: it costs seconds of CPU, which every search process (and a
# model that never reports an AUROC) would otherwise pay at start-up
def roc_auc_score(*args, **kwargs):
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(*args, **kwargs)


def average_precision_score(*args, **kwargs):
    from sklearn.metrics import average_precision_score
    return average_precision_score(*args, **kwargs)


def accuracy(y_true, y_pred):
    """Fraction of rows whose arg-max class matches; y_pred: probabilities, shape (n, C)."""
    y_pred = np.asarray(y_pred)
    return float(np.mean(class_indices(y_true, y_pred.shape[1]) == y_pred.argmax(axis=1)))


def auroc(y_true, y_pred):
    """Area under the ROC curve for class probabilities y_pred, shape (n, C).

    Binary (C = 2): the probability of class 1 is the score. Multi-class: the macro average of
    one-vs-rest AUROCs over the classes present in ``y_true``.
    """
    y_pred = np.asarray(y_pred, dtype=np.float64)
    labels = class_indices(y_true, y_pred.shape[1])
    present = np.unique(labels)
    if len(present) < 2 or not np.all(np.isfinite(y_pred)):
        return float('nan')
    if y_pred.shape[1] == 2:
        return float(roc_auc_score(labels, y_pred[:, 1]))
    scores = [roc_auc_score(labels == c, y_pred[:, c]) for c in present]
    return float(np.mean(scores))


def multilabel_auroc(y_true, y_pred):
    """Per-task AUROC of independent binary tasks, shape (n, T) → array (T,), NaN where undefined."""
    return _per_task(roc_auc_score, y_true, y_pred)


def multilabel_auprc(y_true, y_pred):
    """Per-task average precision (area under precision-recall), shape (n, T) → array (T,)."""
    return _per_task(average_precision_score, y_true, y_pred)


def _per_task(score, y_true, y_pred):
    y_true = np.asarray(y_true).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    out = np.full(y_true.shape[1], np.nan)
    for t in range(y_true.shape[1]):
        if 0 < y_true[:, t].sum() < len(y_true) and np.all(np.isfinite(y_pred[:, t])):
            out[t] = score(y_true[:, t] > 0.5, y_pred[:, t])
    return out


def mse(y_true, y_pred):
    """Mean squared error over all entries."""
    y_true, y_pred = _same_shape(y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def pearson(y_true, y_pred):
    """Pearson correlation; with several targets, shape (n, T), the mean of the T per-target
    correlations (not one pooled over all entries, where each target's own mean would make r
    look high). NaN for a constant target, ignored in the mean unless every target is constant.
    """
    y_true, y_pred = _same_shape(y_true, y_pred)
    a = y_true.reshape(len(y_true), -1)
    b = y_pred.reshape(len(y_pred), -1)
    if len(a) < 2:
        return float('nan')
    a, b = a - a.mean(0), b - b.mean(0)
    scale = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    with np.errstate(divide='ignore', invalid='ignore'):
        r = np.where(scale > 0, (a * b).sum(0) / scale, np.nan)
    r = np.clip(r, -1, 1)
    return float(np.nanmean(r)) if np.any(np.isfinite(r)) else float('nan')


def _same_shape(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.size == y_pred.size:
        y_true = y_true.reshape(y_pred.shape)
    if y_true.shape != y_pred.shape:
        raise ValueError(f'y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; '
                         'they must hold the same number of values')
    return y_true, y_pred
