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
import numpy as np
import torch

from dlutil.interpret.first_layer import (NOT_FIRST, FirstLayerHooks, as_sequences, check_first,
                                          conv1d, conv1d_form)
from dlutil.data.batches import iterate, split_batch
from dlutil.training.evaluation import evaluating, forward, main_output, model_input, network_of
from dlutil.training.labels import label_matrix


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
    hooks = FirstLayerHooks(network)
    parts = {'activations': [], 'positions': [], 'sequences': [], 'labels': []}
    form = activation = None
    try:
        with evaluating(network):
            for batch in iterate(generator, batch_size):
                x, y = split_batch(batch)
                if y is None:
                    raise ValueError('get_max_activations needs labelled batches (x, y): the '
                                     'class means, thresholds and importance scores are per '
                                     'class')
                hooks.reset()
                x_t = model_input(model, x)
                # one strand and float32: the kernels are read off what the convolution sees,
                # and recomputed in float32 by activation_maps
                output = forward(model, x_t, strand_average=False, autocast=False)
                if hooks.conv_out is None:
                    raise ValueError(f'the first convolution {hooks.name!r} did not run in the '
                                     f'forward pass; {NOT_FIRST}')
                if form is None:  # the first batch: check what the convolution sees
                    form = conv1d_form(hooks.conv, hooks.name, hooks.conv_in.shape)
                    check_first(hooks, form)
                    activation = hooks.activation()
                    width = main_output(output)
                    width = width.shape[-1] if width.dim() == 2 else 1
                    input_shape = tuple(x_t.shape[1:]) if isinstance(x_t, torch.Tensor) \
                        else None
                sequences = as_sequences(hooks.conv_in, form['layout']).float()
                maps = hooks.conv_out.reshape(len(sequences), hooks.conv.out_channels,
                                              -1).float()
                if activation is not None:
                    maps = activation(maps)
                values, positions = maps.max(dim=2)
                parts['activations'].append(values.cpu().numpy())
                parts['positions'].append(positions.cpu().numpy())
                parts['sequences'].append(sequences.cpu().numpy())
                parts['labels'].append(np.asarray(y))
    finally:
        hooks.remove()
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


def activation_maps(activations, kernel, rows=None):
    """Kernel ``kernel``'s output along the sequence for ``rows``, shape=(len(rows), positions)."""
    sequences = activations['sequences'] if rows is None else activations['sequences'][rows]
    form = {key: activations[key] for key in ('weight', 'bias', 'stride', 'pad')}
    with torch.no_grad():
        maps = conv1d(torch.from_numpy(np.ascontiguousarray(sequences)), form,
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
