"""Scoring a model: the one forward pass of ``-e``, ``-p``, ``--vep``, ``--attribute`` and
``--interpret``, and the evaluation mode it runs in.

    with evaluating(model.network):
        y_pred = score(model, x)        # x: one batch's inputs as a generator yields them

:func:`score` applies the model's own settings, so two commands never give two numbers for one
input: ``to_input`` (``input_dtype``), ``prepare_input`` (``channels_last``), ``autocast``
(``amp``) and ``strand_average``. A plain ``nn.Module`` is scored as it is, on float32 inputs.

Strand averaging is selene's ``NonStrandSpecific`` in its ``'mean'`` mode: the network runs on
the one-hot input and on its reverse complement, and each output tensor is the mean of the two
(the logits, and for a network that returns them beside the logits, its probabilities).
"""
import contextlib

import torch
from torch import nn

from dlutil.data.batches import to_input
from dlutil.errors import DataShapeError
from dlutil.sequences.onehot import reverse_complement

__all__ = ['evaluating', 'score', 'forward', 'strand_mean', 'main_output', 'network_of',
           'device_of', 'model_input']


def network_of(model):
    """The ``nn.Module`` of a model (its ``network``), or the module itself."""
    network = getattr(model, 'network', model)
    if not isinstance(network, nn.Module):
        raise TypeError(f'model must be a BaseModel or a torch.nn.Module, got '
                        f'{type(model).__name__}')
    return network


def device_of(network):
    """The device of a network's first parameter (the CPU for a network without any)."""
    parameter = next(network.parameters(), None)
    return parameter.device if parameter is not None else torch.device('cpu')


@contextlib.contextmanager
def evaluating(network, grad=False):
    """``network`` in eval mode, without gradients unless ``grad``, for the ``with`` block.

    Every module's previous mode is put back afterwards, also when the block raises (a module
    the user froze in eval mode inside a training network stays frozen).
    """
    modes = [(module, module.training) for module in network.modules()]
    network.eval()
    try:
        with contextlib.nullcontext() if grad else torch.no_grad():
            yield network
    finally:
        network.train(modes[0][1])
        for module, mode in modes:
            module.training = mode


def main_output(output):
    """The logits of a network's output: ``'y_pred_loss'`` (else ``'y_pred'``) of a dict."""
    if isinstance(output, dict):
        for key in ('y_pred_loss', 'y_pred'):
            if key in output:
                return output[key]
        return next(iter(output.values()))
    return output


def strand_mean(run, x):
    """The mean of ``run(x)`` and ``run(reverse_complement(x))``, per tensor of a dict output."""
    y, other = run(x), run(reverse_complement(x))
    if isinstance(y, dict):
        return {key: (value + other[key]) / 2 for key, value in y.items()}
    return (y + other) / 2


def model_input(model, x):
    """One batch's inputs on the model's device, as its ``to_input`` makes them."""
    if hasattr(model, 'to_input'):
        return model.to_input(x)
    return to_input(x, device_of(network_of(model)))


def forward(model, x, strand_average=None, autocast=True):
    """The model's evaluation output for one batch of inputs already on its device.

    Call it inside :func:`evaluating`.

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
    x: torch.Tensor (or a dict or list of them), as ``model.to_input`` returns them; one-hot DNA,
        shape=(n, 4, L) or (n, 4, 1, L), with strand averaging
    strand_average: bool or None
        None: the model's own ``strand_average``; True or False overrides it.
    autocast: bool
        False runs without the model's ``amp``, for code that recomputes a layer in float32.

    Returns
    -------
    torch.Tensor or dict of them: what the network returns, shape=(n, …)
    """
    network = network_of(model)
    owner = type(model).__name__
    average = getattr(model, 'strand_average', False) if strand_average is None \
        else strand_average
    if average:
        _check_strands(f'{owner}.strand_average' if strand_average is None else
                       'strand averaging', x)
    prepare = getattr(model, 'prepare_input', None) or (lambda value: value)

    def run(value):
        return network(prepare(value))

    use_amp = autocast and hasattr(model, 'autocast')
    with model.autocast() if use_amp else contextlib.nullcontext():
        y = strand_mean(run, x) if average else run(x)
    _check_output(owner, network, y)
    return y


def score(model, x, strand_average=None, autocast=True):
    """The model's evaluation output for one batch as a generator yields it (numpy or tensors):
    :func:`model_input`, then :func:`forward`. Call it inside :func:`evaluating`."""
    return forward(model, model_input(model, x), strand_average, autocast)


def _check_strands(what, x):
    """Strand averaging needs one-hot DNA, shape=(n, 4, length) or (n, 4, 1, length)."""
    if not (isinstance(x, torch.Tensor) and x.dim() in (3, 4) and x.shape[1] == 4):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataShapeError(f'{what} needs one-hot DNA in ACGT order, shape (n, 4, length) or '
                             f'(n, 4, 1, length), got inputs of shape {shape}')


def _check_output(owner, network, y):
    """Every output tensor has a row per input: a 0-d output has none to score or compare."""
    values = y.values() if isinstance(y, dict) else [y]
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            raise ValueError(f'{owner}: the network ({type(network).__name__}) returned an '
                             f'output of shape () (0-d); it must return one row per input, '
                             f'shape (n, …)')
