"""Class labels, normalised once for the loss, the metrics and the reports.

A classification generator may serve its labels as

- class indices, shape=(n,) or (n, 1), of any integer, bool or float dtype (0., 1., 2., …);
- one-hot rows, shape=(n, C), integer, bool or float;
- class probabilities, shape=(n, C), float rows in [0, 1] that sum to 1 (soft labels).

:func:`class_targets` turns any of them into what ``F.cross_entropy`` takes (long indices, or
float probabilities) together with a *fault* tensor, computed on the labels' device in one fused
pass and never synchronised there: a class index outside [0, C), −100 (which the loss would
silently ignore), 0.5 (which a cast would silently truncate to class 0) or NaN. On the CPU
:meth:`Faults.add` raises at once; on CUDA it folds the fault into a flag that :meth:`Faults.check`
reads once per epoch, and the indices are clamped so that a bad label never reaches the loss as a
device-side assert. :func:`class_indices` (metrics) and :func:`label_matrix` (reports) use the same
rules on numpy arrays and raise at once.
"""
import numpy as np
import torch

from dlutil.errors import LabelShapeError

#: how far from 1 the sum of a probability row may be
SUM_TOLERANCE = 1e-3

# what a fault describes: an index row, a one-hot / probability row
_INDEX, _ROW = 0.0, 1.0
# the fault of a batch found valid on the CPU (never written to: Faults.add skips it)
_NO_FAULT = torch.zeros(4, dtype=torch.float64)


def _tensor(y):
    return y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))


def _first(bad, values, kind):
    """``[any bad, row of the first bad, its value, kind]`` as float64, without a sync."""
    if not bad.numel():  # an empty batch has no bad label
        return torch.zeros(4, dtype=torch.float64, device=bad.device)
    row = bad.to(torch.uint8).argmax()  # the first bad row (0 when none)
    value = values.gather(0, row.view(1))[0]  # a device-side gather: no sync
    return torch.stack([bad.any().double(), row.double(), value.double(),
                        bad.new_full((), kind, dtype=torch.float64)])


def class_targets(y, n_classes, n=None):
    """Labels for ``n_classes`` classes as the cross-entropy loss takes them.

    Parameters
    ----------
    y: torch.Tensor or numpy.ndarray, shape=(n,), (n, 1) or (n, n_classes)
    n_classes: int
    n: int or None
        Rows the labels must have (the network's batch); None: as many as ``y`` has.

    Returns
    -------
    (target, fault)
        ``target``: long class indices, shape=(n,), or float probabilities, shape=(n, C) (integer
        and bool one-hot rows become indices); ``fault``: float64 tensor, shape=(4,), on ``y``'s
        device, for :meth:`Faults.add`.

    Raises
    ------
    LabelShapeError: a shape that fits neither form (known without looking at the values)
    """
    y = _tensor(y)
    n = (y.shape[0] if y.dim() else 0) if n is None else n
    if y.dim() == 2 and tuple(y.shape) == (n, n_classes) and n_classes > 1:
        rows = y.double()
        total = rows.sum(1)
        if y.is_floating_point():
            bad = ~((rows >= 0) & (rows <= 1)).all(1) | ((total - 1).abs() > SUM_TOLERANCE)
            return y, _first(bad, total, _ROW)
        bad = ((rows != 0) & (rows != 1)).any(1) | (total != 1)
        return y.to(torch.uint8).argmax(1), _first(bad, total, _ROW)
    if y.dim() == 0 or y.numel() != n or y.shape[0] != n:
        raise LabelShapeError(f'labels have shape {tuple(y.shape)} but the network outputs '
                     f'({n}, {n_classes}) (a batch of {n} rows, {n_classes} classes); expected '
                     f'one class index per row, shape ({n},), or one-hot / probability rows, '
                     f'shape ({n}, {n_classes})')
    t = y.reshape(n)
    if t.dtype == torch.bool:
        t = t.long()
    if t.device.type == 'cpu' and not t.is_floating_point() and n:
        # the common case, checked in one pass: on the CPU reading the result costs no sync, and
        # a valid batch needs neither the clamp nor the fault tensor (the loop's hot path)
        low, high = torch.aminmax(t)
        if low >= 0 and high < n_classes:
            return t.long(), _NO_FAULT
    if t.is_floating_point():
        bad = ~((t >= 0) & (t < n_classes)) | (t != t.round())  # NaN fails t >= 0
    else:
        bad = (t < 0) | (t >= n_classes)
    # clamped: a bad index must never reach the loss (on CUDA a device assert)
    target = t.nan_to_num(0).long().clamp(0, n_classes - 1)
    return target, _first(bad, t, _INDEX)


def describe_fault(fault, n_classes):
    """The message of a fault tensor with a bad label (see :func:`class_targets`)."""
    _, row, value, kind = fault.tolist()
    if kind == _ROW:
        return (f'labels of a {n_classes}-class network: row {int(row)} of a batch sums to '
                f'{value:g}; one-hot or probability rows, shape (n, {n_classes}), must hold '
                f'values in [0, 1] that sum to 1')
    return (f'labels must be class indices in [0, {n_classes}) for a network with {n_classes} '
            f'outputs; found {value:g} (row {int(row)} of a batch)')


class Faults:
    """Label faults of a model's batches, checked cheaply in every batch.

    On the CPU :meth:`add` raises at once. On CUDA it only folds the batch's fault into a flag on
    the device (no CPU-GPU sync per batch); :meth:`check` reads it once, at the end of an epoch or
    evaluation, and raises for the first bad label seen.
    """

    def __init__(self, defer=None):
        self.defer = defer  # None: defer on devices other than the CPU
        self.state, self.n_classes = None, None

    def add(self, fault, n_classes):
        """Take one batch's fault tensor (:func:`class_targets`)."""
        if fault is _NO_FAULT:
            return
        if not (fault.device.type != 'cpu' if self.defer is None else self.defer):
            if fault[0]:
                raise LabelShapeError(describe_fault(fault, n_classes))
            return
        if self.state is None:
            self.state, self.n_classes = fault, n_classes
        else:
            self.state = torch.where(self.state[0] > 0, self.state, fault)

    def check(self):
        """Raise ``LabelShapeError`` for the first bad label since the last check."""
        state, self.state = self.state, None
        if state is not None and state[0].item():  # the one sync
            raise LabelShapeError(describe_fault(state.cpu(), self.n_classes))


def class_indices(y, n_classes):
    """Labels as class indices, numpy shape=(n,) int64 (probability rows: their arg-max).

    Raises ``LabelShapeError`` for labels that are not valid for ``n_classes`` classes.
    """
    target, fault = class_targets(y, n_classes)
    Faults().add(fault.cpu(), n_classes)
    return (target.argmax(1) if target.dim() == 2 else target).numpy()


def label_matrix(y, n_classes=None):
    """Labels as 0/1 rows, numpy shape=(n, C) float32, for per-class reports.

    Class indices, shape=(n,) / (n, 1), become one-hot rows of ``max(n_classes, 2)`` columns;
    0/1 rows, shape=(n, C), keep their width (one-hot or multi-hot: a multi-label report).
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        if not np.all((y == 0) | (y == 1)):
            bad = y[(y != 0) & (y != 1)][0]
            raise LabelShapeError(f'labels of shape {y.shape} must be 0/1 rows (one-hot or multi-hot); '
                         f'found {bad:g}')
        return y.astype(np.float32)
    if y.ndim == 0 or y.size != len(y):
        raise LabelShapeError(f'labels have shape {y.shape}; expected class indices, shape (n,) or '
                     f'(n, 1), or 0/1 rows, shape (n, classes)')
    width = max(int(n_classes or 2), 2)
    return np.eye(width, dtype=np.float32)[class_indices(y, width)]
