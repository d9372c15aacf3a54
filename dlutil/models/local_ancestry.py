"""The local-ancestry model: per-variant ancestry of one haplotype, trained as deepLAI trains.

:class:`LocalAncestryModel` is a ready ``BaseModel``: per-variant cross-entropy (variants
labelled :data:`IGNORE` left out), Adam at 1e-4 and early stopping after 10 epochs without a
lower validation loss (deepLAI's ``train.py``), metrics per-variant ``accuracy``, per-ancestry
``precision_<name>``/``recall_<name>`` and the confusion matrix ``confusion_<true>_<called>``
(fractions of the labelled variants), reward −``val_loss``.

Training follows the haplotypes seen, not the batches or epochs, so that a configuration trains
the same way whatever the batch size: Adam's learning rate is ``learning_rate`` ×
√(rows per batch / ``reference_batch``) (the square-root rule for Adam), warmed up linearly over
the first ``warmup_haplotypes`` haplotypes and decayed as 1/√(haplotypes seen) after; gradients
are clipped to norm ``grad_clip``. With ``class_weighting`` the cross-entropy weighs each
ancestry by the inverse of its share of the training panel (``panel_layout()['class_weights']``),
so an ancestry with few reference haplotypes is not called as another. ``window_cM`` and
``smoother_cM`` size the window network in centimorgans (``panel_layout()['genetic_positions']``):
the windows then hold the panel's mean number of variants per ``window_cM``. With
``naive_bayes_init`` (a scale; 0 = off) and the panel's allele counts in ``panel_layout()``, the
window network's classifiers start at that scale × their window's naive-Bayes log-likelihoods
(0.1: tempered, as the variants of a window are not independent). Its network is
:class:`~models.window_lai.WindowLAI` (``config['network'] = 'window'``, the default and the
recommended one) or deepLAI's :class:`~models.segnet.SegNet` (``'segnet'``), with their
hyperparameters from the configuration. ``mode_filter`` (an odd number of variants, 0 = off)
smooths the calls with a sliding majority vote.

Inputs are alleles, shape=(n, variants): 0 REF, 1 ALT, 255 missing (one-hot encoded inside the
network, missing as all zeros); labels int, shape=(n, variants).
"""
import math

import torch
import torch.nn.functional as F

import numpy as np

from dlutil.errors import DataShapeError, LabelShapeError
from dlutil.genotypes.encoding import log_likelihood_table
from dlutil.genotypes.encoding import one_hot_alleles  # noqa: F401 (re-exported)
from dlutil.models.zoo import UnbuiltNetwork
from dlutil.models.segnet import SEGNET_DEFAULTS, SegNet
from dlutil.models.window_lai import WINDOW_DEFAULTS, WindowLAI
from dlutil.training.model import BaseModel

from dlutil.genotypes.h5 import IGNORE, MISSING

MODEL_DEFAULTS = {'network': 'window', 'learning_rate': 1e-4, 'patience': 10, 'mode_filter': 0,
                  'reference_batch': 32, 'warmup_haplotypes': 2048, 'class_weighting': True,
                  'grad_clip': 1.0, 'window_cM': None, 'smoother_cM': None,
                  'naive_bayes_init': 0.1}


def mode_filter(calls, width, n_classes):
    """The most frequent call in a window of ``width`` variants around each variant.

    Parameters
    ----------
    calls: numpy.ndarray, int, shape=(n, variants)
    width: int
        Odd window; 0 or 1 returns ``calls`` unchanged. Ties go to the lower ancestry index.

    Returns
    -------
    numpy.ndarray, shape=(n, variants)
    """
    if width is None or width <= 1:
        return calls
    if width % 2 == 0:
        raise ValueError(f'mode_filter must be an odd number of variants, got {width}')
    half = width // 2
    n, length = calls.shape
    counts = np.zeros((n, length + 1, n_classes), np.int32)
    np.add.at(counts, (np.arange(n)[:, None], np.arange(1, length + 1)[None, :], calls), 1)
    counts = counts.cumsum(axis=1)
    hi = np.minimum(np.arange(length) + half + 1, length)
    lo = np.maximum(np.arange(length) - half, 0)
    return (counts[:, hi] - counts[:, lo]).argmax(axis=2).astype(calls.dtype)


def ancestry_metrics(y_true, calls, names):
    """Per-variant accuracy, per-ancestry precision and recall, and the confusion matrix.

    Parameters
    ----------
    y_true, calls: numpy.ndarray, int, shape=(n, variants)
        :data:`IGNORE` labels are left out.
    names: list of str
        Ancestry names, for the metric keys.
    """
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    calls = np.asarray(calls).reshape(-1).astype(np.int64)
    keep = y_true != IGNORE
    y_true, calls = y_true[keep], calls[keep]
    k = len(names)
    if y_true.size == 0:
        return {'accuracy': float('nan')}
    confusion = np.bincount(y_true * k + calls, minlength=k * k).reshape(k, k)
    values = {'accuracy': float(np.trace(confusion) / confusion.sum())}
    with np.errstate(invalid='ignore', divide='ignore'):
        precision = np.diag(confusion) / confusion.sum(axis=0)
        recall = np.diag(confusion) / confusion.sum(axis=1)
    for i, name in enumerate(names):
        values[f'precision_{name}'] = float(precision[i])
        values[f'recall_{name}'] = float(recall[i])
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            values[f'confusion_{a}_{b}'] = float(confusion[i, j] / confusion.sum())
    return values


def build_network(config, n_variants, n_classes, extra_keys=()):
    """The configuration's network (``'window'`` or ``'segnet'``) with its hyperparameters."""
    kinds = {'window': (WindowLAI, WINDOW_DEFAULTS), 'segnet': (SegNet, SEGNET_DEFAULTS)}
    kind = config.get('network', MODEL_DEFAULTS['network'])
    if kind not in kinds:
        raise ValueError(f"config['network'] must be 'window' or 'segnet', got {kind!r}")
    cls, defaults = kinds[kind]
    # a search space may hold the keys of both networks; anything else is a mistake
    known = set(WINDOW_DEFAULTS) | set(SEGNET_DEFAULTS) | set(MODEL_DEFAULTS) | set(extra_keys)
    unknown = sorted(k for k in config if k not in known)
    if unknown:
        raise ValueError(f'unknown configuration keys {unknown} for the {kind} network; it '
                         f'takes {sorted(defaults)} and {sorted(MODEL_DEFAULTS)}')
    params = {key: config.get(key, value) for key, value in defaults.items()}
    return cls(n_variants, n_classes, **params)


#: what the network says when it is used before its shape is known
_UNBUILT = ('the local-ancestry network is not built: panel_layout() returned None and no '
            'checkpoint was loaded')


class LocalAncestryModel(BaseModel):
    """Per-variant ancestry with a :class:`WindowLAI` or :class:`SegNet` network.

    The panel's shape comes from :meth:`panel_layout`: override it (or set the class attributes
    ``ancestries`` and ``positions``) from the data. When it returns None (evaluation or
    prediction in a process that has not read the panel), the network is rebuilt from the
    checkpoint, which stores its variant positions and shape.
    """

    input_dtype = None  # alleles stay integers: the networks embed or one-hot them themselves

    # train accuracy from the epoch's first outputs only: an argmax over every training output
    # would cost a fifth of the epoch
    max_train_metric_values = 2 ** 18
    ancestries = None  # list of ancestry names
    positions = None   # int64 array of the variant positions
    extra_config_keys = ()  # keys a def.py adds to its configurations for its own use

    def panel_layout(self):
        """``{'ancestries': [...], 'positions': array}`` or None when unknown."""
        if self.ancestries is None or self.positions is None:
            return None
        return {'ancestries': list(self.ancestries), 'positions': np.asarray(self.positions)}

    def init_model(self):
        self.settings = dict(MODEL_DEFAULTS, **{k: v for k, v in self.config.items()
                                                 if k in MODEL_DEFAULTS})
        self.early_stopping_patience = self.settings['patience'] or None
        self.grad_clip_norm = self.settings['grad_clip'] or None
        self.seen = 0  # haplotypes trained on: the learning-rate schedule's clock
        self.class_weights = None
        layout = self.panel_layout()
        if layout is None:
            network = UnbuiltNetwork(DataShapeError, _UNBUILT)
        else:
            self.names = layout['ancestries']
            network = self._network(len(layout['positions']), len(self.names),
                                    self.resolved_sizes(layout))
            network.positions.copy_(torch.as_tensor(layout['positions'], dtype=torch.int64))
            if 'alt_counts' in layout:
                network.encoder.set_frequencies(layout['alt_counts'], layout['allele_totals'])
                scale = float(self.settings['naive_bayes_init'] or 0)
                if scale and hasattr(network, 'init_naive_bayes'):
                    network.init_naive_bayes(scale * log_likelihood_table(
                        layout['alt_counts'], layout['allele_totals']))
            if self.settings['class_weighting'] and layout.get('class_weights') is not None:
                self.class_weights = torch.as_tensor(np.asarray(layout['class_weights']),
                                                     dtype=torch.float32)
        optimizer = torch.optim.Adam(network.parameters(), lr=self.settings['learning_rate'])
        super().init_model(network, self.loss, optimizer)

    def resolved_sizes(self, layout):
        """``window`` (variants) and ``smoother_width`` (windows) from ``window_cM`` and
        ``smoother_cM`` and the panel's genetic positions; {} when not given in cM."""
        window_cm, smoother_cm = self.settings['window_cM'], self.settings['smoother_cM']
        if window_cm is None and smoother_cm is None:
            return {}
        cm = np.asarray(layout.get('genetic_positions'), dtype=np.float64)
        if cm.ndim != 1 or len(cm) != len(layout['positions']) or cm[-1] <= cm[0]:
            raise ValueError('window_cM / smoother_cM need panel_layout()["genetic_positions"], '
                             'the cM of every variant, spanning a positive distance')
        per_cm = len(cm) / (cm[-1] - cm[0])
        window = int(self.config.get('window', 100))
        sizes = {}
        if window_cm is not None:
            window = sizes['window'] = max(1, int(round(window_cm * per_cm)))
        if smoother_cm is not None:
            reach = smoother_cm * per_cm / window  # windows
            sizes['smoother_width'] = max(1, int(round(reach)) // 2 * 2 + 1)  # odd
        return sizes

    def _network(self, n_variants, n_classes, sizes=None):
        config = dict(self.config, **(sizes or {}))
        network = build_network(config, n_variants, n_classes, self.extra_config_keys)
        self.names = getattr(self, 'names', None) or [str(i) for i in range(n_classes)]
        return network

    def load_state_dict(self, state, optimizer=True):
        if isinstance(self.network, UnbuiltNetwork):
            if optimizer:
                raise DataShapeError('the local-ancestry network is not built (panel_layout() '
                                     'is None): a checkpoint can be loaded for evaluation and '
                                     'prediction only, not to resume training')
            layout = [int(v) for v in state['network']['layout']]
            sizes = ({'window': layout[3], 'smoother_width': layout[4]} if len(layout) >= 5
                     else {})
            self.network = self._network(layout[0], layout[1], sizes).to(self.device)
        super().load_state_dict(state, optimizer)

    # -- the schedule: learning rate by haplotypes seen -----------------------------------------
    def learning_rate(self, rows):
        """Adam's rate for a step of ``rows`` haplotypes, after ``self.seen`` haplotypes."""
        s = self.settings
        rate = s['learning_rate'] * math.sqrt(rows / s['reference_batch'])
        warmup = s['warmup_haplotypes']
        if warmup:
            seen = self.seen + rows
            rate *= min(seen / warmup, math.sqrt(warmup / seen))
        return rate

    def train_step(self, x, y):
        rows = int(y.shape[0])
        for group in self.optimizer.param_groups:
            group['lr'] = self.learning_rate(rows)
        self.seen += rows
        return super().train_step(x, y)

    def extra_state(self):
        return {'seen': self.seen}

    def load_extra_state(self, state):
        self.seen = int(state.get('seen', 0))

    @property
    def model_positions(self):
        """The variant positions the network was trained on (from its checkpoint)."""
        return self.network.positions.cpu().numpy()

    def loss(self, y_true_t, logits):
        if y_true_t.shape != (logits.shape[0], logits.shape[2]):
            raise LabelShapeError(f'labels have shape {tuple(y_true_t.shape)} but the network '
                                  f'outputs {tuple(logits.shape)} (n, ancestries, variants); '
                                  f'expected one label per variant, shape '
                                  f'({logits.shape[0]}, {logits.shape[2]})')
        target = y_true_t.long()
        weight = None
        if self.class_weights is not None and self.network.training:
            weight = self.class_weights.to(logits.device)
        if self.network.training and hasattr(self.network, 'training_loss'):
            loss = self.network.training_loss(target, weight)  # the same value, per window
            if loss is not None:
                return loss
        loss = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE)
        return loss + self.network.regularization(target)

    def calls(self, y_pred):
        """Ancestry calls (n, variants) from logits (n, ancestries, variants), mode-filtered."""
        calls = np.asarray(y_pred).argmax(axis=1)
        return mode_filter(calls, self.settings['mode_filter'], y_pred.shape[1])

    def eval_metrics(self, y_true, y_pred):
        return ancestry_metrics(y_true, self.calls(y_pred), self.names)

    def train_metrics(self, y_true, y_pred):
        """Accuracy of the epoch's first outputs (``max_train_metric_values``)."""
        return {'accuracy': ancestry_metrics(y_true, self.calls(y_pred), self.names)['accuracy']}

    def get_hyperband_reward(self, result):
        return -result['val_loss']

    def prediction_output(self, y_pred):
        """``{'probabilities': float32 (n, variants, ancestries), 'calls': uint8 (n, variants)}``."""
        logits = np.asarray(y_pred, dtype=np.float32)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = (shifted / shifted.sum(axis=1, keepdims=True)).transpose(0, 2, 1)
        return {'probabilities': np.ascontiguousarray(probabilities),
                'calls': self.calls(logits).astype(np.uint8)}


__all__ = ['LocalAncestryModel', 'one_hot_alleles', 'mode_filter', 'ancestry_metrics',
           'build_network', 'MISSING', 'IGNORE', 'MODEL_DEFAULTS']
