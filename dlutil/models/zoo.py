"""What the predefined genomics architectures share: length arithmetic, input checks, ready models.

Each architecture module (:mod:`models.deepsea`, :mod:`models.basset`, :mod:`models.chromdragonn`,
:mod:`models.danq`) defines an ordinary ``nn.Module`` taking one-hot DNA, shape=(n, 4, length),
and makes its three ready models with :func:`ready_models`::

    DeepSEAMultiClass, DeepSEAMultiLabel, DeepSEARegression = ready_models(DeepSEA, TRAINING)

A ready model is a ``BaseModel`` subclass whose ``init_model(self)`` builds the architecture and
its optimizer from ``self.config``, so a ``def.py`` needs only loaders, a config and
``Model = models.basset.BassetMultiLabel``. The config keys (see :meth:`ZooModel.init_model`):

- ``n_classes`` (required): the number of outputs: classes (multi-class), tasks (multi-label) or
  targets (regression); the same key for all three tasks.
- ``seq_len`` (default 1000) and the architecture's other constructor arguments (dropout rates,
  hidden units...), with the published values as defaults.
- ``optimizer`` (``'sgd'``, ``'adam'``, ``'rmsprop'``), ``lr``, ``momentum``, ``weight_decay``,
  ``grad_clip_norm``, ``early_stopping_patience``: the training settings of :class:`Training`.
"""
import difflib
import inspect
import itertools
import operator
import textwrap
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from dlutil.errors import InputShapeError
from dlutil.training.tasks import ClassificationModel, MultiLabelModel, RegressionModel


# -- lengths ----------------------------------------------------------------------------------
# A length below 1 stays 0 through every later layer: PyTorch fails at the first empty output,
# even where a padded convolution after it would make positions again.
def conv_length(length, kernel_size, padding=0):
    """Positions after a stride-1 convolution (``nn.Conv1d``, or ``nn.Conv2d`` along one axis)."""
    return max(length + 2 * padding - kernel_size + 1, 0) if length >= 1 else 0


def pool_length(length, kernel_size):
    """Positions after a max-pool of ``kernel_size`` (stride = kernel size, no padding)."""
    return length // kernel_size if length >= 1 else 0


def minimum_seq_len(feature_length):
    """The shortest sequence for which ``feature_length(seq_len)`` leaves one position or more."""
    return next(n for n in itertools.count(1) if feature_length(n) >= 1)


def check_seq_len(name, seq_len, feature_length):
    """``feature_length(seq_len)``, the positions left before flattening; ValueError if none.

    Parameters
    ----------
    name: str
        The architecture, for the message.
    seq_len: int
        Sequence length the network is built for.
    feature_length: callable
        ``seq_len`` → positions left after the convolutions and pools.
    """
    try:
        seq_len = operator.index(seq_len)
    except TypeError:
        raise ValueError(f'{name}: seq_len must be a whole number of bases, '
                         f'got {seq_len!r}') from None
    width = feature_length(seq_len)
    if width < 1:
        raise ValueError(f'{name} needs seq_len >= {minimum_seq_len(feature_length)}: its '
                         f'convolutions and pools leave no position of a shorter sequence; '
                         f'got seq_len={seq_len}')
    return width


def check_input(x, seq_len, name, squeezable=False):
    """Raise :class:`InputShapeError` unless ``x`` is one-hot DNA of shape (n, 4, seq_len).

    With ``squeezable``, shape (n, 4, 1, seq_len) is accepted too.
    """
    shape = tuple(x.shape)
    if shape[1:] == (4, seq_len) or (squeezable and shape[1:] == (4, 1, seq_len)):
        return
    allowed = f'(n, 4, {seq_len})' + (f' or (n, 4, 1, {seq_len})' if squeezable else '')
    raise InputShapeError(f'{name}: X has shape {shape} but must have shape {allowed}: one-hot '
                          f'DNA, 4 channels (A, C, G, T), {seq_len} positions (config '
                          f'seq_len={seq_len})')


class UnbuiltNetwork(nn.Module):
    """Stands in for a network whose shape only the data or a checkpoint can give: it has one
    parameter (so an optimizer can be made) and its forward raises ``error(message)``."""

    def __init__(self, error, message):
        super().__init__()
        self.error, self.message = error, message
        self.placeholder = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        raise self.error(self.message)


class OneHotInput(nn.Module):
    """The ready models' wrapper: accepts (n, 4, 1, length) as well as (n, 4, length).

    Data made for the ``Conv*Network`` classes (and ``examples/conv_seq_classifier``) holds one-hot
    DNA as (n, 4, 1, length); the singleton axis is squeezed before ``network`` sees it.

    Parameters
    ----------
    network: nn.Module
        An architecture with a ``seq_len`` attribute, taking shape=(n, 4, seq_len).
    """

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        """x: torch.Tensor, shape=(n, 4, seq_len) or (n, 4, 1, seq_len) → shape=(n, n_classes)."""
        check_input(x, self.network.seq_len, type(self.network).__name__, squeezable=True)
        return self.network(x.squeeze(2) if x.dim() == 4 else x)


# -- training settings ------------------------------------------------------------------------
OPTIMIZERS = {'sgd': torch.optim.SGD, 'adam': torch.optim.Adam, 'rmsprop': torch.optim.RMSprop}


@dataclass(frozen=True)
class Training:
    """An architecture's published training settings, the defaults of its ready models.

    Parameters
    ----------
    optimizer: str
        ``'sgd'``, ``'adam'`` or ``'rmsprop'``.
    lr: float
    momentum: float or None
        SGD / RMSprop momentum; None for Adam.
    weight_decay: float
        L2 penalty of the optimizer.
    grad_clip_norm: float or None
        Clip the total gradient norm before every step (``BaseModel.grad_clip_norm``).
    early_stopping_patience: int or None
        Epochs without a higher validation reward before a trial stops (``BaseModel``).
    batch_size: int
        The published batch size, recommended as ``-bs``.
    options: dict
        Further arguments of the optimizer (e.g. RMSprop's ``alpha``); they apply while the
        config keeps this optimizer.
    source: str
        Where the settings come from.
    """
    optimizer: str
    lr: float
    momentum: float = None
    weight_decay: float = 0.0
    grad_clip_norm: float = None
    early_stopping_patience: int = 5
    batch_size: int = 100
    options: dict = field(default_factory=dict)
    source: str = ''


TRAINING_KEYS = ('optimizer', 'lr', 'momentum', 'weight_decay', 'grad_clip_norm',
                 'early_stopping_patience')


class ZooModel:
    """Mixin of the ready models: ``init_model`` builds :attr:`architecture` from the config.

    Combined with a task (``ClassificationModel``, ``MultiLabelModel``, ``RegressionModel``) by
    :func:`ready_models`; the task supplies the loss, metrics and reward.
    """

    architecture = None  # an nn.Module class: (n_classes, seq_len=1000, ...)
    published = None  # Training: the defaults

    def settings(self):
        """``(architecture kwargs, training dict)`` from ``self.config`` and the defaults.

        Every problem with the config is reported at once, in one ValueError.
        """
        config = dict(self.config)
        arguments = list(inspect.signature(self.architecture).parameters)
        known = arguments + list(TRAINING_KEYS)
        problems = []
        if 'n_classes' not in config:
            problems.append("'n_classes' is required (the number of classes, tasks or targets)")
        for key in config:
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1)
                problems.append(f'unknown key {key!r}'
                                + (f' (did you mean {hint[0]!r}?)' if hint else ''))
        training = {**asdict(self.published), **{k: config[k] for k in TRAINING_KEYS
                                                 if k in config}}
        if training['optimizer'] not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {sorted(OPTIMIZERS)}, got "
                            f"{training['optimizer']!r}")
        elif training['optimizer'] == 'adam' and config.get('momentum') is not None:
            problems.append(f"momentum={config['momentum']!r} does not apply to optimizer 'adam'")
        if problems:
            raise ValueError(f'{type(self).__name__}: the config {config} has problems: '
                             + '; '.join(problems) + f'. Known keys: {", ".join(known)}')
        return {k: config[k] for k in arguments if k in config}, training

    def init_model(self):
        """Build the network (wrapped in :class:`OneHotInput`) and optimizer from the config."""
        network_kwargs, training = self.settings()
        network = OneHotInput(self.architecture(**network_kwargs))
        options = dict(training['options'] if training['optimizer'] == self.published.optimizer
                       else {})
        options.update(lr=training['lr'], weight_decay=training['weight_decay'])
        if training['optimizer'] != 'adam' and training['momentum'] is not None:
            options['momentum'] = training['momentum']
        optimizer = OPTIMIZERS[training['optimizer']](network.parameters(), **options)
        # instance attributes: BaseModel reads them at every step and epoch
        self.grad_clip_norm = training['grad_clip_norm']
        self.early_stopping_patience = training['early_stopping_patience']
        super().init_model(network, optimizer)


TASKS = (
    ('MultiClass', ClassificationModel,
     'one class per sequence: softmax + cross-entropy. Labels: class indices, shape=(n,), or '
     'one-hot rows. Metrics: loss, accuracy, auroc. Predictions: class probabilities'),
    ('MultiLabel', MultiLabelModel,
     'independent binary tasks (the original DeepSEA / Basset setting): sigmoid + binary '
     'cross-entropy. Labels: 0/1, shape=(n, n_classes). Metrics: loss, mean auroc and auprc, '
     'and per task auroc_<i>, auprc_<i>. Predictions: probabilities'),
    ('Regression', RegressionModel,
     'real-valued targets: mean squared error. Labels: shape=(n, n_classes). Metrics: loss, mse, '
     'pearson. Predictions: shape=(n, n_classes)'),
)

READY_DOC = ("{architecture} ready to train, {what}.",
             "Reads ``self.config``: ``n_classes`` (required; classes, tasks or targets), "
             "``seq_len`` (default 1000) and any other argument of "
             ":class:`{module}.{architecture}` ({arguments}), and the training settings: "
             "{training}. Defaults are the published settings ({source}). Recommended batch "
             "size: ``-bs {batch_size}``.",
             "Inputs: one-hot DNA, shape=(n, 4, seq_len) or (n, 4, 1, seq_len). The network "
             "returns logits, shape=(n, n_classes).")


def ready_models(architecture, training):
    """The multi-class, multi-label and regression ``BaseModel`` classes of ``architecture``.

    Parameters
    ----------
    architecture: type
        An ``nn.Module`` class ``(n_classes, seq_len=1000, ...)`` with a ``seq_len`` attribute,
        taking shape=(n, 4, seq_len), returning logits shape=(n, n_classes).
    training: Training
        Its published training settings: the defaults.

    Returns
    -------
    tuple of 3 classes
        ``<Name>MultiClass`` (``ClassificationModel``), ``<Name>MultiLabel``
        (``MultiLabelModel``) and ``<Name>Regression`` (``RegressionModel``), defined as
        attributes of ``architecture``'s module (assign them to those names there).
    """
    name = architecture.__name__
    arguments = {k: v for k, v in inspect.signature(architecture).parameters.items()
                 if k not in ('n_classes', 'seq_len')}
    settings = asdict(training)
    classes = []
    for suffix, task, what in TASKS:
        fields = dict(
            architecture=name, what=what, module=architecture.__module__,
            arguments=', '.join(f'``{k}={p.default!r}``' for k, p in arguments.items()),
            training=', '.join(f'``{k}={settings[k]!r}``' for k in TRAINING_KEYS),
            source=training.source, batch_size=training.batch_size)
        doc = '\n\n'.join(textwrap.fill(paragraph.format(**fields), 96)
                          for paragraph in READY_DOC)
        classes.append(type(name + suffix, (ZooModel, task), {
            '__module__': architecture.__module__, '__qualname__': name + suffix,
            '__doc__': doc, 'architecture': architecture, 'published': training,
            'grad_clip_norm': training.grad_clip_norm,
            'early_stopping_patience': training.early_stopping_patience,
            'recommended_batch_size': training.batch_size}))
    return tuple(classes)
