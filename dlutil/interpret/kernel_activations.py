"""The maximum activations of a network's first-layer convolution kernels, as pysster has them.

For a network whose first layer is a convolution over one-hot sequences (``nn.Conv1d`` on
(n, alphabet, length), or ``nn.Conv2d`` on (n, alphabet, 1, length) or (n, 1, alphabet, length)),
:func:`get_max_activations` runs the network over a generator with forward hooks on that
convolution and records, per sequence and kernel, the largest output over all positions (after
the activation applied to it first, pysster's kernels carry their ReLU: an activation module
that takes the output directly, e.g. ``nn.ReLU``, or ``torch.relu`` in ``forward``), where it
is, the labels and the one-hot sequences the convolution sees. The convolution is also
kept as a plain 1-D one over (n, alphabet, length) (dilation gaps as zero weights), so that
:func:`activation_maps` can recompute one kernel's output along the sequence.
"""
import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlutil.training.batches import iterate, split_batch, to_tensor
from dlutil.training.labels import label_matrix

# modules counted as the convolution's activation when they take its output directly
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
               nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Hardtanh)
NOT_FIRST = ('motif interpretation maps each first-layer kernel back to the letters of the '
             'input, so the network\'s first layer must be a convolution over the one-hot '
             'sequence')


def first_convolution(network):
    """``(name, module)`` of the first ``nn.Conv1d``/``nn.Conv2d`` in ``network.modules()``."""
    for name, module in network.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            return name, module
    raise ValueError(f'the network ({type(network).__name__}) has no nn.Conv1d or nn.Conv2d '
                     f'layer: {NOT_FIRST}')


def network_of(model):
    network = getattr(model, 'network', model)
    if not isinstance(network, nn.Module):
        raise TypeError(f'model must be a BaseModel or a torch.nn.Module, got '
                        f'{type(model).__name__}')
    return network


def device_of(network):
    parameter = next(network.parameters(), None)
    return parameter.device if parameter is not None else torch.device('cpu')


class _FirstLayer:
    """Hooks on every leaf module of a network that record the first convolution's input and
    output, the modules that ran before it, and the first module after it with its input."""

    def __init__(self, network):
        self.name, self.conv = first_convolution(network)
        self.leaves = [m for m in network.modules() if not list(m.children())]
        self.handles = []
        self.reset()
        for module in self.leaves:
            self.handles.append(module.register_forward_pre_hook(self._pre))
            self.handles.append(module.register_forward_hook(self._post))

    def reset(self):
        self.before, self.conv_in, self.conv_out, self.conv_out_object = [], None, None, None
        self.follower = self.follower_input = None
        self.follower_direct = False

    def _pre(self, module, inputs):
        if self.conv_out_object is None:
            if module is not self.conv:
                self.before.append(module)
        elif self.follower is None:  # the first module after the convolution
            self.follower = module
            first = inputs[0] if inputs else None
            self.follower_direct = first is self.conv_out_object
            if isinstance(first, torch.Tensor):
                self.follower_input = first.detach().clone()

    def _post(self, module, inputs, output):
        if module is self.conv and self.conv_out_object is None:
            self.conv_in = inputs[0].detach().clone()
            self.conv_out = output.detach().clone()  # clone: an in-place ReLU may follow
            self.conv_out_object = output

    def activation(self):
        """What the network applies to the convolution's output first: an activation module
        that takes it directly (``nn.ReLU``, …), or a ReLU applied functionally before the next
        module (``pool(torch.relu(conv(x)))``); else None."""
        if self.follower_direct and isinstance(self.follower, ACTIVATIONS):
            return copy.deepcopy(self.follower)
        seen, out = self.follower_input, self.conv_out
        if seen is not None and seen.shape == out.shape and bool((out < 0).any()) \
                and torch.equal(seen, out.clamp_min(0)):
            return nn.ReLU()
        return None

    def remove(self):
        for handle in self.handles:
            handle.remove()


def _conv1d_form(conv, name, in_shape):
    """The first convolution as a plain 1-D one over (n, alphabet, length): how to reshape its
    input to that, and the weight (K, alphabet, span) with dilation gaps as zeros."""
    weight = conv.weight.detach().float()
    where = f'the first convolution {name!r} ({conv})'
    if conv.groups != 1:
        raise ValueError(f'{where} has groups={conv.groups}; {NOT_FIRST} mixing all channels')
    if isinstance(conv, nn.Conv1d):
        layout, kernel = 'conv1d', weight
    elif len(in_shape) == 4 and in_shape[2] == 1 and conv.kernel_size[0] == 1:
        layout, kernel = 'height1', weight[:, :, 0, :]  # (n, alphabet, 1, length)
    elif len(in_shape) == 4 and in_shape[1] == 1 and conv.kernel_size[0] == in_shape[2]:
        layout, kernel = 'channel1', weight[:, 0, :, :]  # (n, 1, alphabet, length)
    else:
        raise ValueError(f'{where} gets input of shape {tuple(in_shape[1:])}; {NOT_FIRST}: '
                         f'(n, alphabet, length) for nn.Conv1d, (n, alphabet, 1, length) or '
                         f'(n, 1, alphabet, length) with a kernel spanning the alphabet for '
                         f'nn.Conv2d')
    padding = conv.padding if isinstance(conv.padding, str) else conv.padding[-1]
    if padding != 0 and padding != 'valid' and conv.padding_mode != 'zeros':
        raise ValueError(f'{where} pads with {conv.padding_mode!r}; only zero padding maps '
                         f'back to letters')
    if layout != 'conv1d' and not isinstance(conv.padding, str) and conv.padding[0] != 0:
        raise ValueError(f'{where} pads across the alphabet; {NOT_FIRST}')
    dilation, size = conv.dilation[-1], kernel.shape[-1]
    span = dilation * (size - 1) + 1
    full = torch.zeros(kernel.shape[0], kernel.shape[1], span, device=kernel.device)
    full[:, :, ::dilation] = kernel
    if padding == 'same':
        pad = ((span - 1) // 2, span - 1 - (span - 1) // 2)
    else:
        pad = (0, 0) if padding == 'valid' else (padding, padding)
    bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(len(full))
    return {'layout': layout, 'weight': full, 'bias': bias, 'stride': conv.stride[-1],
            'pad': pad}


def _as_sequences(x, layout):
    """The convolution's input as (n, alphabet, length)."""
    return {'conv1d': x, 'height1': x[:, :, 0, :] if x.dim() == 4 else x,
            'channel1': x[:, 0] if x.dim() == 4 else x}[layout]


def _conv1d(sequences, form, kernels=slice(None)):
    x = F.pad(sequences, form['pad'])
    return F.conv1d(x, form['weight'][kernels].to(x), form['bias'][kernels].to(x),
                    stride=form['stride'])


def main_output(output):
    """The logits of a network's output: ``'y_pred_loss'`` (else ``'y_pred'``) of a dict."""
    if isinstance(output, dict):
        for key in ('y_pred_loss', 'y_pred'):
            if key in output:
                return output[key]
        return next(iter(output.values()))
    return output


@torch.no_grad()
def get_max_activations(model, generator, batch_size=None, class_names=None):
    """The maximum output of every first-layer kernel on every sequence of ``generator``.

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
        Its network's first layer is an ``nn.Conv1d``/``nn.Conv2d`` over one-hot input.
    generator: batch generator
        Yields ``(x, y)``: x one-hot, shape=(n, A, L), (n, A, 1, L) or (n, 1, A, L); y class
        indices, shape=(n,), or 0/1 rows, shape=(n, C) (multi-label).
    batch_size: int, optional
        For generators built without one.
    class_names: list of str, optional

    Returns
    -------
    dict
        'activations': float32, shape=(n, K), the max over positions of each kernel's output
        (after its activation: an activation module that takes the output directly, e.g.
        ``nn.ReLU``, or a ReLU applied functionally, ``pool(torch.relu(conv(x)))``);
        'positions': int64, shape=(n, K), the arg-max in the kernel's output;
        'starts': int64, shape=(n, K), where that window starts in the sequence;
        'labels': float32, shape=(n, C), one-hot or multi-hot;
        'sequences': float32, shape=(n, A, L), the one-hot sequences the convolution sees;
        'kernel_length', 'layer' (the convolution's name), 'input_shape' (of one network
        input; None for dict inputs),
        'class_names', 'multilabel', and the convolution as a 1-D one ('weight', 'bias',
        'stride', 'pad', 'activation') for :func:`activation_maps`.

    Raises
    ------
    ValueError
        When the network has no convolution, or a layer with weights runs before its first
        convolution, or that convolution does not see one-hot sequences.
    """
    network = network_of(model)
    device = device_of(network)
    hooks = _FirstLayer(network)
    was_training = network.training
    network.eval()
    parts = {'activations': [], 'positions': [], 'sequences': [], 'labels': []}
    form = activation = None
    try:
        for batch in iterate(generator, batch_size):
            x, y = split_batch(batch)
            if y is None:
                raise ValueError('get_max_activations needs labelled batches (x, y): the class '
                                 'means, thresholds and importance scores are per class')
            hooks.reset()
            x_t = to_tensor(x, device)
            output = network(x_t)
            if hooks.conv_out is None:
                raise ValueError(f'the first convolution {hooks.name!r} did not run in the '
                                 f'forward pass; {NOT_FIRST}')
            if form is None:  # the first batch: check what the convolution sees
                form = _conv1d_form(hooks.conv, hooks.name, hooks.conv_in.shape)
                _check_first(hooks, form)
                activation = hooks.activation()
                width = main_output(output)
                width = width.shape[-1] if width.dim() == 2 else 1
                input_shape = tuple(x_t.shape[1:]) if isinstance(x_t, torch.Tensor) else None
            sequences = _as_sequences(hooks.conv_in, form['layout']).float()
            maps = hooks.conv_out.reshape(len(sequences), hooks.conv.out_channels, -1).float()
            if activation is not None:
                maps = activation(maps)
            values, positions = maps.max(dim=2)
            parts['activations'].append(values.cpu().numpy())
            parts['positions'].append(positions.cpu().numpy())
            parts['sequences'].append(sequences.cpu().numpy())
            parts['labels'].append(np.asarray(y))
    finally:
        hooks.remove()
        network.train(was_training)
    if form is None:
        raise ValueError('the generator yielded no batches')
    out = {key: np.concatenate(value) for key, value in parts.items()}
    out['labels'] = label_matrix(out['labels'], width)
    n_classes = out['labels'].shape[1]
    names = [str(c) for c in class_names] if class_names is not None else \
        [f'class {c}' for c in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f'class_names has {len(names)} names for {n_classes} classes')
    out['positions'] = out['positions'].astype(np.int64)
    out['starts'] = out['positions'] * form['stride'] - form['pad'][0]
    out.update(layer=hooks.name, kernel_length=form['weight'].shape[-1],
               input_shape=input_shape, class_names=names,
               multilabel=bool(np.any(out['labels'].sum(axis=1) != 1)),
               weight=form['weight'].cpu(), bias=form['bias'].cpu(), stride=form['stride'],
               pad=form['pad'], activation=activation.cpu() if activation is not None else None)
    return out


def _check_first(hooks, form):
    """No layer with weights runs before the convolution, and it sees one-hot sequences:
    values in [0, 1], at most 1 per position (padding, dropout in eval mode, a transpose or
    ``F.one_hot`` before it are fine)."""
    learned = [m for m in hooks.before if any(True for _ in m.parameters(recurse=False))]
    if learned:
        raise ValueError(f'the first convolution {hooks.name!r} runs after '
                         f'{type(learned[0]).__name__}, a layer with weights; {NOT_FIRST}')
    sequences = _as_sequences(hooks.conv_in, form['layout']).float()
    if sequences.numel() and (sequences.min() < 0 or sequences.max() > 1
                              or sequences.sum(dim=1).max() > 1 + 1e-4):
        raise ValueError(f'the first convolution {hooks.name!r} gets values from '
                         f'{float(sequences.min()):.3g} to {float(sequences.max()):.3g} (up to '
                         f'{float(sequences.sum(dim=1).max()):.3g} per position), not one-hot '
                         f'sequences; {NOT_FIRST}')
    reference = _conv1d(sequences, form)
    got = hooks.conv_out.float()
    tolerance = 1e-3 * (1 + float(got.abs().max()))
    if got.numel() != reference.numel() or not torch.allclose(
            reference, got.reshape(reference.shape), rtol=1e-3, atol=tolerance):
        raise ValueError(f'the first convolution {hooks.name!r} could not be reproduced as a '
                         f'1-D convolution over the sequence; {NOT_FIRST}')


def activation_maps(activations, kernel, rows=None):
    """Kernel ``kernel``'s output along the sequence for ``rows``, shape=(len(rows), positions)."""
    sequences = activations['sequences'] if rows is None else activations['sequences'][rows]
    form = {key: activations[key] for key in ('weight', 'bias', 'stride', 'pad')}
    with torch.no_grad():
        maps = _conv1d(torch.from_numpy(np.ascontiguousarray(sequences)), form,
                       slice(kernel, kernel + 1))[:, 0]
        if activations['activation'] is not None:
            maps = activations['activation'](maps)
    return maps.numpy()


def window_starts(activations):
    """Where the window of each output position starts in the sequence, shape=(positions,)."""
    left, right = activations['pad']
    length = activations['sequences'].shape[2] + left + right
    positions = (length - activations['kernel_length']) // activations['stride'] + 1
    return np.arange(positions) * activations['stride'] - left


def class_means(activations):
    """Mean maximum activation per class and kernel, shape=(C, K); NaN for empty classes."""
    labels = activations['labels'] > 0
    counts = labels.sum(axis=0)
    sums = labels.T.astype(np.float64) @ activations['activations'].astype(np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(counts[:, None] > 0, sums / counts[:, None], np.nan)


def importance_scores(activations):
    """Per kernel: max − min over classes of the mean maximum activation, shape=(K,)."""
    means = class_means(activations)
    return np.nanmax(means, axis=0) - np.nanmin(means, axis=0)
