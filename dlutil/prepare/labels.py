"""How ``prepare`` stores labels: class indices, 0/1 targets or regression values, decided from
the values as they stream past."""
import math

import numpy as np

from dlutil.prepare.options import TASKS
from dlutil.sequences.readers import InputError


class LabelFacts:
    """What the label values allow (class indices? 0/1?), with a counter-example for errors.

    Fed block by block (:meth:`update`), so a streamed input needs no second copy of its labels;
    :meth:`resolve` then picks how they are stored.
    """

    def __init__(self):
        self.max, self.not_binary, self.not_class = -math.inf, None, None

    def update(self, values, where):
        """``values`` shape=(n, targets); ``where(i)`` names row i's place in the input."""
        if not values.size:
            return
        self.max = max(self.max, float(values.max()))
        for attr, bad in (('not_binary', (values != 0) & (values != 1)),
                          ('not_class', (values < 0) | (values != np.round(values)))):
            rows = np.flatnonzero(bad.any(1))
            if getattr(self, attr) is None and len(rows):
                i = rows[0]
                setattr(self, attr, f'{where(i)} has {values[i][bad[i]][0]:g}')

    def resolve(self, task, targets, class_names=None):
        """How the labels are stored.

        Parameters
        ----------
        task: {'auto', 'class', 'multilabel', 'regression'}
            ``auto``: 0/1 values are a class (one target) or multi-label (several targets),
            anything else regression.
        targets: list of str
        class_names: list of str or None
            For 'class': default '0', '1', ... up to the largest label.

        Returns
        -------
        (task, classes): classes is None unless the task is 'class'
        """
        if task not in TASKS:
            raise InputError(f'--task must be one of {", ".join(TASKS)}, got {task!r}')
        if task == 'auto':
            task = 'regression' if self.not_binary else \
                'class' if len(targets) == 1 else 'multilabel'
        if task == 'class':
            if len(targets) != 1:
                raise InputError(f'--task class needs one label column, got {len(targets)}: '
                                 f'{targets}')
            if self.not_class:
                raise InputError(f'--task class needs class indices 0, 1, 2, ...: '
                                 f'{self.not_class}')
            n_classes = int(self.max) + 1
            if class_names is not None and len(class_names) < n_classes:
                raise InputError(f'--class-names gives {len(class_names)} names but the labels '
                                 f'go up to class {n_classes - 1}')
            return task, list(class_names or [str(k) for k in range(max(n_classes, 2))])
        if class_names:
            raise InputError(f'--class-names is for --task class, and this task is {task}')
        if task == 'multilabel' and self.not_binary:
            raise InputError(f'--task multilabel needs 0/1 labels: {self.not_binary}')
        return task, None
