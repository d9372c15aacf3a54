"""pysster's configurable sequence CNN (Budach & Marsico, Bioinformatics 2018), on our core.

The network (:class:`PyssterNetwork`), for one-hot input of shape=(n, channels, length)::

    dropout(dropout_input)
    conv_num × [Conv1d(kernel_num, kernel_len, valid) → ReLU → MaxPool1d(pool_size, pool_stride)
                → dropout(dropout_conv)]
    optional rnn_num × LSTM/GRU(rnn_units, bidirectional?, input/recurrent dropout), the last
        layer returning its final output; otherwise flatten
    dense_num × [Linear(neuron_num) → ReLU → dropout(dropout_dense)]
    Linear(n_classes) → logits

and the model around it (:class:`PyssterModel`, single-label: softmax + cross-entropy;
:class:`PyssterMultiLabelModel`: sigmoid + binary cross-entropy): Adam(``learning_rate``),
max-norm ``kernel_constraint`` on the weights of every layer, learning rate halved after
``patience_lr`` epochs without a lower validation loss, training stopped after
``patience_stopping`` such epochs (the search then reports and uses the best epoch, best.pt).

Every hyperparameter of pysster's tables, with its defaults, is in :data:`PYSSTER_DEFAULTS`; a
configuration names the ones it changes, by pysster's names or by the keys every ready model of the
tool understands (:data:`GENERAL_KEYS`: ``lr``, ``reduce_lr_patience``, ``early_stopping_patience``). Where the PyTorch port differs from pysster (Keras):

- ``conv.0`` (the first convolution, the first registered module) outputs pre-activations; the
  ReLU is applied in ``forward``. pysster's "activations" of a kernel are the ReLU of them.
- max-norm is :class:`constraints.MaxNormConstraint`: the norm of each output unit's incoming
  weights (for a convolution, over channels × kernel positions). Keras' ``max_norm(3)`` with its
  default ``axis=0`` on a Conv1D kernel constrains each (channel, kernel) slice separately, a
  looser bound; on dense and recurrent kernels the two agree.
- weights start as Keras starts them (Glorot-uniform kernels, orthogonal recurrent kernels, zero
  biases, LSTM forget-gate bias 1).
- the recurrent layers are written as cells unrolled over time, so ``rnn_dropout_recurrent``
  works as in Keras: one dropout mask per sequence on the hidden state fed back at every step
  (and one on the inputs for ``rnn_dropout_input``), shared by the gates. GRU follows PyTorch's
  (and Keras 2.3+'s ``reset_after=True``) equations.
- ``batch_size``: the CLI's ``--batch-size`` sets the training batches unless a configuration
  names ``batch_size``, which then wins. ``epochs`` stops a trial after that many epochs;
  Hyperband's R (``--epoch``) is usually the tighter limit.
- inputs shorter than ``seq_len`` are padded with zero columns (at the end, or centred, as
  :mod:`fasta_data` pads), so predictions may be made on shorter sequences.
"""
import difflib

import torch
import torch.nn.functional as F
from torch import nn

from dlutil.errors import DataLayoutError
from dlutil.models._recurrent import RecurrentLayer  # noqa: F401 (re-exported)
from dlutil.models.zoo import UnbuiltNetwork
from dlutil.training.constraints import MaxNormConstraint
from dlutil.training.tasks import ClassificationModel, MultiLabelModel

PYSSTER_DEFAULTS = {
    'conv_num': 2,            # number of convolutional/pooling layers
    'kernel_num': 30,         # number of kernels in each conv layer
    'kernel_len': 25,         # length of kernels
    'pool_size': 2,           # size of pooling windows
    'pool_stride': 2,         # step size of pooling operation
    'dense_num': 1,           # number of dense layers
    'neuron_num': 100,        # number of neurons in each dense layer
    'dropout_input': 0.1,     # dropout portion after input
    'dropout_conv': 0.3,      # dropout portion after pooling layers
    'dropout_dense': 0.6,     # dropout portion after dense layers
    'batch_size': 128,        # batch size during training
    'learning_rate': 0.0005,  # learning rate of Adam optimizer
    'patience_lr': 5,         # epochs without val-loss improvement before halving the lr
    'patience_stopping': 15,  # epochs without val-loss improvement before stopping
    'epochs': 500,            # maximum number of training epochs
    'kernel_constraint': 3,   # max-norm weight constraint
    'rnn_type': None,         # None, 'LSTM' or 'GRU'
    'rnn_num': 1,             # number of RNN layers
    'rnn_units': 32,          # output dimensions of each RNN layer (per direction)
    'rnn_bidirectional': True,
    'rnn_dropout_input': 0.2,      # dropout portion for input connections
    'rnn_dropout_recurrent': 0.0,  # dropout portion for recurrent connections
}
LAYOUT_KEYS = ('n_channels', 'seq_len', 'n_classes', 'multilabel', 'padding')
PADDINGS = ('end', 'center')  # as fasta_data pads: the code saved in the network's layout

_INT_AT_LEAST = {'conv_num': 0, 'dense_num': 0, 'kernel_num': 1, 'kernel_len': 1,
                 'pool_size': 1, 'pool_stride': 1, 'neuron_num': 1, 'batch_size': 1,
                 'patience_lr': 0, 'patience_stopping': 0, 'epochs': 1, 'rnn_num': 1,
                 'rnn_units': 1}
_DROPOUTS = ('dropout_input', 'dropout_conv', 'dropout_dense', 'rnn_dropout_input',
             'rnn_dropout_recurrent')
#: the keys every ready model of the tool understands -> pysster's own names for them
GENERAL_KEYS = {'lr': 'learning_rate', 'reduce_lr_patience': 'patience_lr',
                'early_stopping_patience': 'patience_stopping'}


def pysster_params(config, allowed=()):
    """pysster's hyperparameters: :data:`PYSSTER_DEFAULTS` updated with ``config``, checked.

    Integral floats (as hyperopt's ``quniform`` draws them) become ints. Every problem (an
    unknown key, a value of the wrong kind) is reported at once.

    Parameters
    ----------
    config: dict
    allowed: iterable of str
        Other keys the configuration may hold (they are left out of the result).
    """
    problems = []
    allowed = set(allowed)
    both = [f'{general!r} and {own!r}' for general, own in GENERAL_KEYS.items()
            if general in config and own in config]
    if both:
        raise ValueError('pysster parameters: ' + '; '.join(both) + ' are one setting '
                         '(the general key and pysster\'s); give one of them')
    config = {GENERAL_KEYS.get(key, key): value for key, value in config.items()}
    for key in config:
        if key not in PYSSTER_DEFAULTS and key not in allowed:
            close = difflib.get_close_matches(key, list(PYSSTER_DEFAULTS), n=1)
            problems.append(f'unknown parameter {key!r}'
                            + (f' (did you mean {close[0]!r}?)' if close else ''))
    params = {**PYSSTER_DEFAULTS, **{k: v for k, v in config.items() if k in PYSSTER_DEFAULTS}}
    for key, low in _INT_AT_LEAST.items():
        value = params[key]
        if isinstance(value, float) and value.is_integer():
            params[key] = value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            problems.append(f'{key}={value!r} (expected an integer ≥ {low})')
    for key in _DROPOUTS:
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            problems.append(f'{key}={value!r} (expected a number in [0, 1))')
    rate = params['learning_rate']
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        problems.append(f'learning_rate={rate!r} (expected a number > 0)')
    norm = params['kernel_constraint']
    if norm is not None and (isinstance(norm, bool) or not isinstance(norm, (int, float))
                             or not norm > 0):
        problems.append(f'kernel_constraint={norm!r} (expected a number > 0, or None for none)')
    kind = params['rnn_type']
    if isinstance(kind, str) and kind.upper() in ('LSTM', 'GRU'):
        params['rnn_type'] = kind.upper()
    elif kind is not None:
        problems.append(f"rnn_type={kind!r} (expected None, 'LSTM' or 'GRU')")
    if not isinstance(params['rnn_bidirectional'], bool):
        problems.append(f'rnn_bidirectional={params["rnn_bidirectional"]!r} (expected True or '
                        f'False)')
    if problems:
        raise ValueError('pysster parameters: ' + '; '.join(problems))
    return params


def layer_lengths(seq_len, params):
    """``[(layer, length)]``: the sequence length after each convolution and pooling."""
    lengths, length = [], seq_len
    for i in range(params['conv_num']):
        length = length - params['kernel_len'] + 1
        lengths.append((f'conv.{i}', length))
        if length < params['pool_size']:
            length = 0
        else:
            length = (length - params['pool_size']) // params['pool_stride'] + 1
        lengths.append((f'pool.{i}', length))
    return lengths


def check_lengths(seq_len, params):
    """Raise a ValueError naming the length after each layer when the sequence shrinks to
    nothing (pysster's note: 300 → conv 25 → 276 → pool → 138 → …)."""
    lengths = layer_lengths(seq_len, params)
    if lengths and min(length for _, length in lengths) < 1:
        shown = lengths[:next(i for i, (_, n) in enumerate(lengths) if n < 1) + 1]
        steps = ' → '.join(f'{name} {length}' for name, length in shown)
        raise ValueError(f'the convolutions and poolings shrink sequences of length {seq_len} to '
                         f'nothing: input {seq_len} → {steps}; use fewer layers (conv_num='
                         f'{params["conv_num"]}), shorter kernels (kernel_len='
                         f'{params["kernel_len"]}), smaller pools (pool_size='
                         f'{params["pool_size"]}, pool_stride={params["pool_stride"]}) or '
                         f'longer sequences')
    return lengths[-1][1] if lengths else seq_len


#: what the network says when it is used before its shape is known
_UNBUILT = ('the pysster network is not built: data_layout() returned None and no checkpoint '
            'was loaded; the model needs n_channels, seq_len and n_classes to train')


class PyssterNetwork(nn.Module):
    """pysster's network; see the module docstring. Output: logits, shape=(n, n_classes).

    Parameters
    ----------
    n_channels: int
        One-hot channels (4 for DNA/RNA, 20 for protein, alphabet × structure letters).
    seq_len: int
        Input length; shorter inputs are padded with zero columns, as ``padding`` says.
    n_classes: int
    padding: 'end' or 'center'
        How the data were padded (:mod:`fasta_data`): zero columns after shorter inputs, or on
        both sides (then within one position of how the loader centres each sequence).
    **params
        pysster's hyperparameters (:data:`PYSSTER_DEFAULTS`); the training ones
        (``learning_rate``, ``batch_size``, …) are accepted and ignored here.

    Modules, in forward order: ``dropout_input``, ``conv.i``, ``pool.i``, ``dropout_conv.i``,
    ``rnn.i`` or ``flatten``, ``dense.i``, ``dropout_dense.i``, ``output``; ``conv.0`` is
    registered first, so it is the first module with weights.
    """

    def __init__(self, n_channels, seq_len, n_classes, padding='end', **params):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f'padding must be one of {PADDINGS}, got {padding!r}')
        self.padding = padding
        p = pysster_params(params)
        self.params, self.seq_len = p, int(seq_len)
        self.n_channels, self.n_classes = int(n_channels), int(n_classes)
        length = check_lengths(self.seq_len, p)
        self.conv = nn.ModuleList()  # first: interpretation looks for the first convolution
        channels = self.n_channels
        for _ in range(p['conv_num']):
            self.conv.append(nn.Conv1d(channels, p['kernel_num'], p['kernel_len']))
            channels = p['kernel_num']
        self.dropout_input = nn.Dropout(p['dropout_input'])
        self.pool = nn.ModuleList(nn.MaxPool1d(p['pool_size'], p['pool_stride'])
                                  for _ in range(p['conv_num']))
        self.dropout_conv = nn.ModuleList(nn.Dropout(p['dropout_conv'])
                                          for _ in range(p['conv_num']))
        self.rnn = nn.ModuleList()
        if p['rnn_type']:
            for i in range(p['rnn_num']):
                last = i == p['rnn_num'] - 1
                self.rnn.append(RecurrentLayer(p['rnn_type'], channels, p['rnn_units'],
                                               p['rnn_bidirectional'], p['rnn_dropout_input'],
                                               p['rnn_dropout_recurrent'],
                                               return_sequences=not last))
                channels = p['rnn_units'] * (2 if p['rnn_bidirectional'] else 1)
            features = channels
        else:
            self.flatten = nn.Flatten()
            features = channels * length
        self.dense = nn.ModuleList()
        for _ in range(p['dense_num']):
            self.dense.append(nn.Linear(features, p['neuron_num']))
            features = p['neuron_num']
        self.dropout_dense = nn.ModuleList(nn.Dropout(p['dropout_dense'])
                                           for _ in range(p['dense_num']))
        self.output = nn.Linear(features, self.n_classes)
        for layer in [*self.conv, *self.dense, self.output]:  # Keras' initialisers
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        # saved with the weights, so a checkpoint says what network it belongs to
        self.register_buffer('layout', torch.tensor([self.n_channels, self.seq_len,
                                                     self.n_classes, PADDINGS.index(padding)]))

    def forward(self, x):
        """x: one-hot, shape=(n, n_channels, length ≤ seq_len) → logits, shape=(n, n_classes)."""
        if x.dim() != 3 or x.shape[1] != self.n_channels or x.shape[2] > self.seq_len:
            raise ValueError(f'PyssterNetwork: input has shape {tuple(x.shape)} but must have '
                             f'shape (n, {self.n_channels}, length ≤ {self.seq_len})')
        if x.shape[2] < self.seq_len:
            missing = self.seq_len - x.shape[2]
            left = missing // 2 if self.padding == 'center' else 0
            x = F.pad(x, (left, missing - left))
        x = self.dropout_input(x)
        for conv, pool, dropout in zip(self.conv, self.pool, self.dropout_conv):
            x = dropout(pool(torch.relu(conv(x))))
        if len(self.rnn):
            x = x.transpose(1, 2)  # (n, length, features)
            for layer in self.rnn:
                x = layer(x)
        else:
            x = self.flatten(x)
        for dense, dropout in zip(self.dense, self.dropout_dense):
            x = dropout(torch.relu(dense(x)))
        return self.output(x)


class _PyssterTraining:
    """What both pysster models share: the network, Adam, max-norm, patience, ``epochs`` and
    ``batch_size``, all from ``self.config`` (pysster's parameters plus the layout keys).

    The layout, ``n_channels``, ``seq_len``, ``n_classes`` (and ``multilabel``, ``padding``),
    comes from the configuration or from the class attributes of the same names; a def.py may
    also override :meth:`data_layout` (e.g. to return ``FastaData.layout``).
    """

    n_channels = seq_len = n_classes = None
    multilabel = False
    padding = 'end'
    extra_config_keys = ()  # keys a def.py adds to its configurations for its own use

    def data_layout(self):
        """``{'n_channels', 'seq_len', 'n_classes', 'multilabel', 'padding'}``, or None when
        unknown: the network is then built by :meth:`load_state_dict` from the checkpoint's
        shapes (for evaluation and prediction in a process that has not read the data)."""
        return {key: self.config.get(key, getattr(self, key)) for key in LAYOUT_KEYS}

    def init_model(self):
        self.params = pysster_params(self.config, allowed=(*LAYOUT_KEYS,
                                                           *self.extra_config_keys))
        layout = self.data_layout()
        if layout is None:
            network = UnbuiltNetwork(DataLayoutError, _UNBUILT)
            super().init_model(network, optimizer=torch.optim.Adam(network.parameters()))
            return
        missing = [key for key in ('n_channels', 'seq_len', 'n_classes')
                   if layout.get(key) is None]
        if missing:
            raise DataLayoutError(
                f'{type(self).__name__} needs {", ".join(missing)}: put them in the '
                f'configuration, set them on the Model class, or override data_layout() (e.g. '
                f'return FastaData.layout)')
        if bool(layout.get('multilabel')) != self.multilabel:
            wanted, used = (('PyssterMultiLabelModel', 'PyssterModel') if layout.get('multilabel')
                            else ('PyssterModel', 'PyssterMultiLabelModel'))
            raise DataLayoutError(f'the data are {"" if layout.get("multilabel") else "not "}'
                                  f'multi-label: the Model must extend {wanted}, not {used} '
                                  f'(pysster_model_class(multilabel) picks it)')
        p = self.params
        network = PyssterNetwork(layout['n_channels'], layout['seq_len'], layout['n_classes'],
                                 layout.get('padding') or 'end', **p)
        optimizer = torch.optim.Adam(network.parameters(), lr=p['learning_rate'])
        constraints = ([MaxNormConstraint(p['kernel_constraint'], '*')]
                       if p['kernel_constraint'] else [])
        # BaseModel reads these after init_model: ReduceLROnPlateau ×0.5, early stopping
        self.reduce_lr_patience = p['patience_lr'] or None
        self.reduce_lr_factor = 0.5
        self.early_stopping_patience = p['patience_stopping'] or None
        super().init_model(network, optimizer=optimizer, constraints=constraints)

    def load_state_dict(self, state, optimizer=True):
        if isinstance(self.network, UnbuiltNetwork):
            if optimizer:
                raise DataLayoutError(f'{type(self).__name__}: data_layout() is None, so the '
                                      f'network can be loaded for evaluation and prediction '
                                      f'only (optimizer=False), not to resume training')
            n_channels, seq_len, n_classes, padding = (int(v) for v in state['network']['layout'])
            self.network = PyssterNetwork(n_channels, seq_len, n_classes, PADDINGS[padding],
                                          **self.params).to(self.device)
        super().load_state_dict(state, optimizer)

    def train_epoch(self, generator, progress=None):
        size = self.config.get('batch_size')
        if size is not None:  # the configuration's batch size wins over --batch-size
            if not hasattr(generator, 'iter_batches'):
                raise TypeError(f'the configuration sets batch_size={size}, but the training '
                                f'generator ({type(generator).__name__}) cannot serve batches '
                                f'of another size; drop batch_size from the configuration')
            generator = _Batches(generator, self.params['batch_size'])
        return super().train_epoch(generator, progress)

    def end_epoch(self, result):
        stop = super().end_epoch(result)
        return stop or result.get('epoch', 0) >= self.params['epochs']


class _Batches:
    """Iterating yields ``generator.iter_batches(size)``: one epoch in batches of ``size``."""

    def __init__(self, generator, size):
        self.generator, self.size = generator, size

    def __iter__(self):
        return self.generator.iter_batches(self.size)


class PyssterModel(_PyssterTraining, ClassificationModel):
    """pysster's model for single-label data: softmax + categorical cross-entropy.

    Labels are class indices (``FastaData`` of several files). Metrics ``loss``, ``accuracy``,
    ``auroc``; reward −``val_loss``; predictions are class probabilities, shape=(n, classes).
    """


class PyssterMultiLabelModel(_PyssterTraining, MultiLabelModel):
    """pysster's model for multi-label data: sigmoid + binary cross-entropy per class.

    Labels are 0/1 rows, shape=(n, classes) (``FastaData`` of one file). Metrics ``loss``, mean
    and per-class ``auroc``/``auprc``; predictions are probabilities per class.
    """

    multilabel = True


def pysster_model_class(multilabel):
    """:class:`PyssterMultiLabelModel` or :class:`PyssterModel`."""
    return PyssterMultiLabelModel if multilabel else PyssterModel


__all__ = ['PYSSTER_DEFAULTS', 'PyssterNetwork', 'PyssterModel', 'PyssterMultiLabelModel',
           'RecurrentLayer', 'pysster_params', 'pysster_model_class', 'layer_lengths',
           'check_lengths', 'DataLayoutError']
