"""Exchangeable (permutation-invariant) networks f(X) = h(g(φ(x₁), …, φ(xₙ))), as in defiNETti.

Chan et al., "A likelihood-free inference framework for population genetic data using
exchangeable neural networks", NeurIPS 2018. The rows x₁ … xₙ of an example (haplotypes,
draws, points) are exchangeable: φ is applied to every row alike, g is a symmetric function over
the rows, and h maps the pooled features to the output, so shuffling the rows leaves the output
unchanged.

The network is written in defiNETti's layer syntax::

    phi_net = [('conv', 5, 32), ('conv', 5, 64)]  # per row: 1×width convolutions, or ('fc', n)
    g = ('top_k', 1)                             # ('max',), ('sort',), ('top_k', k),
                                                 # ('moments', m1, m2, ...)
    h_net = [('fc', 128), ('fc', 128), ('softmax',)]  # ends in ('softmax',) or ('matmul',)

Shapes: an example is (rows, positions) or (rows, positions, channels); a batch adds the first
axis, shape=(n, rows, positions[, channels]). Inside, features are laid out (n, channels, rows,
positions): ``('conv', w, d)`` is a ``Conv2d`` with a 1×w kernel (valid, ReLU), ``('fc', k)`` a
dense layer (ReLU) on each row's positions × channels, so both treat every row alike. g pools
over the rows into (n, channels × k, 1, positions); in h, ``('conv', w, d)`` slides along the
positions of that single row and ``('fc', k)`` sees all of it. ``('matmul',)`` is the final
linear layer of a regression head, output shape=(n, outputs); ``('softmax',)`` the final layer
of a classification head, output ``{'y_pred': probabilities, 'y_pred_loss': logits}``, each
shape=(n, classes), as :class:`base_model.ClassificationModel` expects.

Where the PyTorch port differs from defiNETti (TensorFlow 1): weights start as PyTorch starts
them (not a truncated normal of sd 0.05); ``('moments', m)`` is the mean of φ(x)^m over the rows
with 0^m taken as 0, defiNETti's definition. The seed's ``train()``/``test()`` are in
:mod:`models.definetti` (re-exported here).

Layer lists may be tuples or lists (a configuration read back from JSON has lists).
"""
import difflib
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from dlutil.errors import DataShapeError
from dlutil.training.tasks import ClassificationModel, RegressionModel

LAYERS = {'conv': 'a 1×width convolution: (\'conv\', width, depth)',
          'fc': 'a fully-connected layer: (\'fc\', nodes)',
          'matmul': 'the last layer of a regression h_net: (\'matmul\',)',
          'softmax': 'the last layer of a classification h_net: (\'softmax\',)'}
POOLS = {'max': "('max',)", 'sort': "('sort',)", 'top_k': "('top_k', k)",
         'moments': "('moments', m1, m2, ...)"}
HEADS = ('matmul', 'softmax')


def _is_int(value, low=1):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _hint(name, choices):
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f' (did you mean {close[0]!r}?)' if close else ''


def _named(value, where, table, kind, options, problems, expected):
    """``(name, args)`` of a tuple whose first item is a key of ``table``, or None after
    appending what is wrong to ``problems`` (``expected``: what a valid value looks like)."""
    if not isinstance(value, (tuple, list)) or not value or not isinstance(value[0], str):
        problems.append(f'{where} = {value!r}: {expected}')
        return None
    name = value[0]
    if name not in table:
        problems.append(f'{where} = {tuple(value)!r}: unknown {kind}{name!r}'
                        f'{_hint(name, table)}; one of {options}')
        return None
    return name, tuple(value[1:])


def parse_layer(layer, where, problems):
    """``layer`` as a normalised tuple, or None after appending what is wrong to ``problems``."""
    named = _named(layer, where, LAYERS, 'layer ', ', '.join(LAYERS), problems,
                   f'a layer is a tuple whose first item names it, one of {", ".join(LAYERS)} '
                   "(e.g. ('fc', 128))")
    if named is None:
        return None
    name, args = named
    wanted = {'conv': 2, 'fc': 1}.get(name, 0)
    if len(args) != wanted or not all(_is_int(a) for a in args):
        problems.append(f'{where} = {tuple(layer)!r}: {name} takes '
                        + (f'{wanted} positive integer{"s" if wanted > 1 else ""}, '
                           if wanted else 'no arguments, ')
                        + f'as in {LAYERS[name].split(": ")[1]}')
        return None
    return (name,) + tuple(int(a) for a in args)


def parse_g(g, rows, problems):
    """The symmetric function ``g`` as a normalised tuple, or None (``problems`` says why)."""
    options = ', '.join(POOLS.values())
    named = _named((g,) if isinstance(g, str) else g, 'g', POOLS, '', options, problems,
                   f'must be one of {options}')
    if named is None:
        return None
    name, args = named
    g = (name,) + args
    if name in ('max', 'sort') and args:
        problems.append(f'g = {tuple(g)!r}: {name} takes no arguments, {POOLS[name]}')
        return None
    if name == 'top_k' and (len(args) != 1 or not _is_int(args[0])):
        problems.append(f'g = {tuple(g)!r}: top_k takes one positive integer k, ({"top_k"!r}, k)')
        return None
    if name == 'top_k' and args[0] > rows:
        problems.append(f'g = {tuple(g)!r}: k={args[0]} is more than the {rows} rows of an '
                        f'example')
        return None
    if name == 'moments' and (not args or not all(
            isinstance(m, numbers.Real) and not isinstance(m, bool) and m > 0 for m in args)):
        problems.append(f'g = {tuple(g)!r}: moments takes one or more positive numbers, '
                        f'(\'moments\', 1, 2)')
        return None
    return (name,) + tuple(int(a) if name == 'top_k' else a for a in args)


def check_shapes(input_shape, output_shape, problems):
    """``(input_shape, output_shape)`` as tuples of ints, or Nones (``problems`` says why)."""
    shapes = []
    for name, shape, sizes in (('input_shape', input_shape, (2, 3)),
                               ('output_shape', output_shape, (1,))):
        try:
            ok = len(shape) in sizes and all(_is_int(d) for d in shape)
        except TypeError:
            ok = False
        if not ok:
            dims = ' or '.join(map(str, sizes))
            example = '(rows, positions) or (rows, positions, channels)' if len(sizes) > 1 \
                else '(outputs,)'
            problems.append(f'{name} = {shape!r}: must be a tuple of {dims} positive integers, '
                            f'{example}')
            shapes.append(None)
        else:
            shapes.append(tuple(int(d) for d in shape))
    return shapes


class _RowDense(nn.Module):
    """('fc', n) on each row: (N, C, R, W) → dense over W·C → ReLU → (N, n, R, 1)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        n, c, r, w = x.shape
        x = x.permute(0, 2, 3, 1).reshape(n, r, w * c)
        return F.relu(self.linear(x)).permute(0, 2, 1).unsqueeze(-1)


class _Pool(nn.Module):
    """g over the rows: (N, C, R, W) → (N, C·k, 1, W)."""

    def __init__(self, g):
        super().__init__()
        self.name, self.args = g[0], g[1:]

    def forward(self, x):
        n, c, r, w = x.shape
        if self.name == 'max':
            return x.amax(dim=2, keepdim=True)
        if self.name == 'moments':
            safe = torch.where(x == 0, torch.ones_like(x), x)
            pooled = torch.stack([torch.where(x == 0, torch.zeros_like(x), safe ** m).mean(dim=2)
                                  for m in self.args], dim=2)          # (N, C, M, W)
        else:
            k = r if self.name == 'sort' else self.args[0]
            pooled = x.topk(k, dim=2, sorted=True).values              # (N, C, k, W)
        return pooled.reshape(n, -1, 1, w)


class ExchangeableNetwork(nn.Module):
    """h(g(φ(x₁), …, φ(xₙ))) from defiNETti's layer syntax; invariant to the order of the rows.

    Parameters
    ----------
    input_shape: tuple of int
        One example: (rows, positions) or (rows, positions, channels); rows are exchangeable.
    output_shape: tuple of int
        (outputs,): classes for a softmax head, values for a matmul head.
    phi_net: list of tuple
        Layers applied to every row: ``('conv', width, depth)``, ``('fc', nodes)``.
    g: tuple
        ``('max',)``, ``('sort',)``, ``('top_k', k)`` or ``('moments', m1, m2, ...)``.
    h_net: list of tuple
        ``('conv', width, depth)``, ``('fc', nodes)`` layers, then ``('matmul',)`` or
        ``('softmax',)``.

    Raises
    ------
    ValueError
        Every problem with the shapes and the layer lists, at once.
    """

    def __init__(self, input_shape, output_shape, phi_net, g, h_net):
        super().__init__()
        problems = []
        input_shape, output_shape = check_shapes(input_shape, output_shape, problems)
        rows = input_shape[0] if input_shape else 1
        phi = [parse_layer(layer, f'phi_net[{i}]', problems) for i, layer in enumerate(
            _as_list(phi_net, 'phi_net', problems))]
        h = [parse_layer(layer, f'h_net[{i}]', problems) for i, layer in enumerate(
            _as_list(h_net, 'h_net', problems))]
        g = parse_g(g, rows, problems)
        for i, layer in enumerate(phi):
            if layer and layer[0] in HEADS:
                problems.append(f'phi_net[{i}] = {layer!r}: {layer[0]} may only end h_net')
        if not h or (h[-1] and h[-1][0] not in HEADS):
            problems.append(f'h_net = {h_net!r}: must end with (\'matmul\',) for regression '
                            f'or (\'softmax\',) for classification')
        for i, layer in enumerate(h[:-1]):
            if layer and layer[0] in HEADS:
                problems.append(f'h_net[{i}] = {layer!r}: {layer[0]} may only be the last layer')
        if not problems:
            self._build(input_shape, output_shape, phi, g, h, problems)
        if problems:
            raise ValueError('ExchangeableNetwork: ' + '; '.join(problems))
        self.input_shape, self.output_shape = input_shape, output_shape
        self.phi_net, self.g, self.h_net = phi, g, h
        self.head = h[-1][0]

    def _build(self, input_shape, output_shape, phi, g, h, problems):
        channels = input_shape[2] if len(input_shape) == 3 else 1
        width = input_shape[1]
        self.phi = nn.ModuleList()
        for i, layer in enumerate(phi):
            channels, width = self._add(self.phi, layer, channels, width, f'phi_net[{i}]',
                                        problems, per_row=True)
        self.pool = _Pool(g)
        k = {'max': 1, 'sort': input_shape[0]}.get(g[0]) or (
            g[1] if g[0] == 'top_k' else len(g) - 1)
        channels *= k
        self.h = nn.ModuleList()
        for i, layer in enumerate(h[:-1]):
            channels, width = self._add(self.h, layer, channels, width, f'h_net[{i}]',
                                        problems, per_row=False)
        self.out = nn.Linear(channels * width, output_shape[0])

    @staticmethod
    def _add(modules, layer, channels, width, where, problems, per_row):
        if layer[0] == 'conv':
            if layer[1] > width:
                problems.append(f'{where} = {layer!r}: width {layer[1]} is more than the '
                                f'{width} positions left at that layer')
                return channels, width
            modules.append(nn.Conv2d(channels, layer[2], (1, layer[1])))
            return layer[2], width - layer[1] + 1
        if per_row:
            modules.append(_RowDense(channels * width, layer[1]))
        else:
            modules.append(nn.Sequential(nn.Flatten(), nn.Linear(channels * width, layer[1]),
                                         nn.ReLU(), nn.Unflatten(1, (layer[1], 1, 1))))
        return layer[1], 1

    def forward(self, x):
        """x: shape=(n, rows, positions) or (n, rows, positions, channels)."""
        if x.dim() != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise DataShapeError(f'ExchangeableNetwork: input has shape {tuple(x.shape)} but must '
                             f'have shape (n, {", ".join(map(str, self.input_shape))})')
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
        for layer in self.phi:
            x = F.relu(layer(x)) if isinstance(layer, nn.Conv2d) else layer(x)
        x = self.pool(x)
        for layer in self.h:
            x = F.relu(layer(x)) if isinstance(layer, nn.Conv2d) else layer(x)
        out = self.out(x.flatten(1))
        if self.head == 'softmax':
            return {'y_pred': torch.softmax(out, dim=1), 'y_pred_loss': out}
        return out

    def spec(self):
        """The constructor's arguments as plain data (to save beside the weights)."""
        return {'input_shape': list(self.input_shape), 'output_shape': list(self.output_shape),
                'phi_net': [list(layer) for layer in self.phi_net], 'g': list(self.g),
                'h_net': [list(layer) for layer in self.h_net]}


def _as_list(layers, name, problems):
    if not isinstance(layers, (tuple, list)):
        problems.append(f'{name} = {layers!r}: must be a list of layers, e.g. '
                        f'[(\'fc\', 128), (\'fc\', 128)]')
        return []
    if layers and isinstance(layers[0], str):  # one layer given bare: ('fc', 128)
        problems.append(f'{name} = {layers!r}: must be a list of layers; for one layer write '
                        f'[{tuple(layers)!r}]')
        return []
    return list(layers)


class _ExchangeableMixin:
    """Builds the network and Adam from ``self.config`` (see :class:`ExchangeableClassifier`)."""

    input_shape = None
    output_shape = None

    def init_model(self):
        config = self.config
        missing = [key for key in ('input_shape', 'output_shape')
                   if config.get(key, getattr(self, key)) is None]
        if missing:
            raise ValueError(f'{type(self).__name__}: set {" and ".join(missing)} as class '
                             f'attributes of Model (or config keys), e.g. input_shape = '
                             f'(198, 24, 2), output_shape = (2,)')
        network = ExchangeableNetwork(config.get('input_shape', self.input_shape),
                                      config.get('output_shape', self.output_shape),
                                      config['phi_net'], config['g'], config['h_net'])
        if network.head != self.head:
            raise ValueError(f'{type(self).__name__}: h_net must end with ({self.head!r},), '
                             f'got {config["h_net"]!r}')
        optimizer = torch.optim.Adam(network.parameters(), lr=config.get('lr', 1e-3))
        super().init_model(network, optimizer)


class ExchangeableClassifier(_ExchangeableMixin, ClassificationModel):
    """A :class:`ExchangeableNetwork` classifier for ``def.py``: cross-entropy, accuracy, AUROC.

    Config keys: ``phi_net``, ``g``, ``h_net`` (ending in ``('softmax',)``), ``lr`` (Adam,
    default 1e-3, defiNETti's); ``input_shape`` and ``output_shape`` as config keys or class
    attributes of the def.py's ``Model``. Labels: one-hot rows (defiNETti's), shape=(n, classes),
    or class indices.
    """

    head = 'softmax'


class ExchangeableRegressor(_ExchangeableMixin, RegressionModel):
    """A :class:`ExchangeableNetwork` regressor for ``def.py``: mean squared error, Pearson r.

    Config keys as :class:`ExchangeableClassifier`, with ``h_net`` ending in ``('matmul',)``.
    """

    head = 'matmul'


__all__ = ['ExchangeableNetwork', 'ExchangeableClassifier', 'ExchangeableRegressor']
