"""Variant scores from the model's outputs for the reference and the alternative windows.

    scoring = Scoring(['diff', 'log_fold_change'], kind='sigmoid', tasks='maxabs')
    pred_ref, pred_alt, scores = scoring(ref, alt)   # ref, alt: Outputs of the two windows

The scores (each alt versus ref, per task; all computed in float64):

``diff``
    alt − ref of the predictions (what ``-p`` predicts for the two windows).
``log_fold_change``
    log2(alt / ref). For probabilities (classification and multi-label models) it is
    log p(alt) − log p(ref) over log 2, from the logits (no pseudocount, no probability rounded to
    0); for any other output log2((alt + c) / (ref + c)) with the pseudocount c
    (``--vep-pseudocount``, default 1, as Basenji's SAR): a prediction at or below −c gives NaN.
``ratio``
    alt / ref, the same way: p(alt) / p(ref) from the logits, else (alt + c) / (ref + c).
``log_odds``
    logit(alt) − logit(ref), from the logits (:func:`log_odds_of_logits`); probabilities only.

A two-class softmax classifier is scored on class 1, the positive class, only: class 0's
prediction is 1 − p₁, so its scores repeat class 1's with the sign flipped (``diff``,
``log_odds``) and would only halve the table.

Models with positional outputs, shape (n, tasks, positions) (profile models), need a rule for the
positions (``positions``): ``sum``, ``mean`` or ``max`` reduce each window's profile to one value
per task (its total, mean or peak) before scoring, as gReLU and Basenji's SAD/SAR do; ``meanabs``
scores every position and takes the mean absolute score, ``maxabs`` the score of largest
magnitude, with its sign (the predictions kept are then the profile's mean).

Over tasks (``tasks``): ``none`` keeps one column per task; ``sum``, ``mean``, ``max``, ``min``,
``meanabs`` (mean absolute value) and ``maxabs`` (the value of largest magnitude, with its sign)
reduce every score to one column, named after the rule (``maxabs_of_tasks``).
"""
from typing import NamedTuple

import numpy as np

__all__ = ['SCORES', 'TASK_RULES', 'POSITION_RULES', 'Outputs', 'Scoring', 'default_scores',
           'log_odds_of_logits', 'log_probabilities', 'reduce']

SCORES = ('diff', 'log_fold_change', 'ratio', 'log_odds')
TASK_RULES = ('none', 'sum', 'mean', 'max', 'min', 'meanabs', 'maxabs')
POSITION_RULES = ('sum', 'mean', 'max', 'meanabs', 'maxabs')
LOG2 = np.log(2.0)


class Outputs(NamedTuple):
    """A batch of windows' outputs: ``predictions`` (n, tasks) or (n, tasks, positions), and
    the ``logits`` the probabilities come from (same shape; None for other outputs), float64."""
    predictions: np.ndarray
    logits: object = None


def default_scores(kind, positional=False):
    """What ``--vep`` scores unless told: ``diff``, and ``log_odds`` for probabilities."""
    return ['diff'] + (['log_odds'] if kind is not None and not positional else [])


def reduce(values, rule, axis):
    """``values`` reduced along ``axis`` by a rule of :data:`TASK_RULES` (not 'none')."""
    if rule == 'sum':
        return values.sum(axis)
    if rule == 'mean':
        return values.mean(axis)
    if rule == 'max':
        return values.max(axis)
    if rule == 'min':
        return values.min(axis)
    if rule == 'meanabs':
        return np.abs(values).mean(axis)
    if rule == 'maxabs':
        size = np.abs(values)
        size[np.isnan(size)] = -1.0  # a NaN is never the largest, unless all are NaN
        at = np.expand_dims(size.argmax(axis), axis)
        return np.take_along_axis(values, at, axis).squeeze(axis)
    raise ValueError(f'reduce: rule must be one of {", ".join(TASK_RULES[1:])}, got {rule!r}')


def log_odds_of_logits(logits, kind):
    """log(p / (1 - p)) of every output, in float64, from the logits (no probability rounded).

    Parameters
    ----------
    logits: array, shape=(n, tasks)
    kind: 'softmax' or 'sigmoid'
        'softmax' (one class per example): l_k - logsumexp of the other classes' logits, so that
        the two classes of a binary classifier have opposite log-odds; 'sigmoid' (independent
        tasks): the logit itself.

    Returns
    -------
    numpy.ndarray, float64, shape=(n, tasks)
    """
    z = np.asarray(logits, np.float64)
    z = z.reshape(len(z), -1)
    if kind == 'sigmoid':
        return z
    if kind != 'softmax':
        raise ValueError(f"log_odds_of_logits: kind must be 'softmax' or 'sigmoid', got {kind!r}")
    if z.shape[1] < 2:
        raise ValueError(f'log_odds_of_logits: a softmax over {z.shape[1]} class has no '
                         f'log-odds; logits of shape {z.shape}')
    rows = np.arange(len(z))
    top = z.argmax(1)
    m1 = z[rows, top]
    rest = z.copy()
    rest[rows, top] = -np.inf
    m2 = rest.max(1)
    # any class but the top one: the others' logsumexp is m1 + log(1 + the rest but itself),
    # shifted by the top logit so nothing overflows
    e = np.exp(rest - m1[:, None])
    others = np.maximum(e.sum(1, keepdims=True) - e, 0.0)
    out = z - m1[:, None] - np.log1p(others)
    # the top class: the others' logsumexp shifted by the second logit (no underflow to -inf)
    out[rows, top] = m1 - m2 - np.log(np.exp(rest - m2[:, None]).sum(1))
    return out


def log_probabilities(logits, kind):
    """log p of every output, float64, from the logits: log-sigmoid or log-softmax (over
    axis 1)."""
    z = np.asarray(logits, np.float64)
    if kind == 'sigmoid':
        return -np.logaddexp(0.0, -z)
    top = z.max(1, keepdims=True)
    return z - top - np.log(np.exp(z - top).sum(1, keepdims=True))


class Scoring:
    """Turns the ref and alt windows' :class:`Outputs` into predictions and scores.

    Parameters
    ----------
    scores: list of str
        Names from :data:`SCORES`, in the order wanted.
    kind: 'softmax', 'sigmoid' or None
        How the logits give probabilities (``log_odds_kind``); None: not probabilities.
    tasks: str
        A rule of :data:`TASK_RULES`.
    positions: str or None
        A rule of :data:`POSITION_RULES` for positional outputs; None: the outputs must be
        (n, tasks).
    pseudocount: float
        c of ``log_fold_change`` and ``ratio`` for outputs that are not probabilities.
    """

    def __init__(self, scores, kind=None, tasks='none', positions=None, pseudocount=1.0):
        unknown = [s for s in scores if s not in SCORES]
        if unknown or not scores:
            raise ValueError(f'--vep-score: expected some of {", ".join(SCORES)}, got '
                             f'{", ".join(scores) or "none"}')
        if tasks not in TASK_RULES:
            raise ValueError(f'--vep-aggregate-tasks: expected one of {", ".join(TASK_RULES)}, '
                             f'got {tasks!r}')
        if positions is not None and positions not in POSITION_RULES:
            raise ValueError(f'--vep-aggregate-positions: expected one of '
                             f'{", ".join(POSITION_RULES)}, got {positions!r}')
        if 'log_odds' in scores and kind is None:
            raise ValueError('--vep-score log_odds needs probabilities (a classification or '
                             'multi-label model, whose logits give log-odds); this model\'s '
                             'outputs are not')
        if 'log_odds' in scores and positions is not None:
            raise ValueError('--vep-score log_odds is for one probability per task and window; '
                             'a model with positional outputs has none (score diff, '
                             'log_fold_change or ratio)')
        self.scores, self.kind, self.tasks, self.positions = list(scores), kind, tasks, positions
        self.pseudocount = float(pseudocount)
        self.binary = False  # set by :meth:`check` for a two-class softmax

    def check(self, shape):
        """The predictions' shape of one batch: (n, tasks) or, with ``positions``,
        (n, tasks, positions); sets :attr:`binary`. Returns the number of prediction columns."""
        if self.positions is None and len(shape) != 2:
            raise ValueError(f'--vep: the model returns outputs of shape {shape} per batch; '
                             f'with positional outputs (n, tasks, positions), say how to '
                             f'aggregate the positions with --vep-aggregate-positions '
                             f'{"|".join(POSITION_RULES)}')
        if self.positions is not None and len(shape) != 3:
            raise ValueError(f'--vep-aggregate-positions is for positional outputs (n, tasks, '
                             f'positions); this model returns outputs of shape {shape}')
        self.binary = self.kind == 'softmax' and shape[1] == 2 and len(shape) == 2
        return 1 if self.binary else shape[1]

    def labels(self, names):
        """The column names of the scores, given the prediction columns' names."""
        return list(names) if self.tasks == 'none' else [f'{self.tasks}_of_tasks']

    def __call__(self, ref, alt):
        """(pred_ref, pred_alt, {score: values}): predictions (n, tasks) and every score
        (n, tasks) or (n, 1) after the task rule; float64."""
        keep = slice(1, 2) if self.binary else slice(None)
        p_ref, p_alt = ref.predictions[:, keep], alt.predictions[:, keep]
        if self.positions in ('sum', 'mean', 'max'):
            p_ref, p_alt = (reduce(p, self.positions, 2) for p in (p_ref, p_alt))
        scores = {}
        for name in self.scores:
            values = self._score(name, p_ref, p_alt, ref.logits, alt.logits, keep)
            if values.ndim == 3:  # meanabs, maxabs over positions
                values = reduce(values, self.positions, 2)
            if self.tasks != 'none':
                values = reduce(values, self.tasks, 1)[:, None]
            scores[name] = values
        if p_ref.ndim == 3:
            p_ref, p_alt = p_ref.mean(2), p_alt.mean(2)
        return p_ref, p_alt, scores

    def _score(self, name, p_ref, p_alt, z_ref, z_alt, keep):
        if name == 'diff':
            return p_alt - p_ref
        if name == 'log_odds':
            return (log_odds_of_logits(z_alt, self.kind) -
                    log_odds_of_logits(z_ref, self.kind))[:, keep]
        if self.kind is not None and self.positions is None:  # probabilities: from the logits
            log_ratio = (log_probabilities(z_alt, self.kind) -
                         log_probabilities(z_ref, self.kind))[:, keep]
        else:
            with np.errstate(divide='ignore', invalid='ignore'):
                log_ratio = np.log(p_alt + self.pseudocount) - np.log(p_ref + self.pseudocount)
        return log_ratio / LOG2 if name == 'log_fold_change' else np.exp(log_ratio)
