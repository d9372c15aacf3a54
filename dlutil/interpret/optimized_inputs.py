"""Inputs that a network's nodes respond to most, found by gradient ascent (pysster's
``visualize_optimized_inputs``).

pysster warns that these pictures are hard to interpret: prefer the kernel motifs of
:mod:`interpret` for biology; these show how the network works.
"""
import difflib
import os

import torch
from tqdm.auto import tqdm

from dlutil.interpret.motif import Motif, alphabet_symbols
from dlutil.training.evaluation import device_of, evaluating, main_output, network_of

LOGO_ROW = 50  # positions per row of an optimized input's logo: ~1400 px wide, letters legible


class _Stop(Exception):
    """Raised by a hook once the layer of interest has run: the rest of the network is skipped."""


def visualize_optimized_inputs(model, layer_name, folder, input_shape, data, nodes=None,
                               bound=0.1, lr=0.02, steps=600, l2=1e-3, seed=0, colors=None,
                               node_names=None):
    """Inputs that maximise each node of a layer, by gradient ascent, as one logo PNG per node.

    The input is a softmax over the alphabet of free logits, shape ``input_shape`` (one input,
    e.g. (4, 1, 101)), started uniform in [−bound, bound]; Adam maximises the node's mean output
    (over positions, for convolutions) minus ``l2`` times the mean squared logit. pysster warns
    that these pictures are hard to interpret: prefer :func:`visualize_kernel`.

    Parameters
    ----------
    layer_name: str
        A name of ``network.named_modules()``, or ``'output'`` for the network's output (logits:
        ``'y_pred_loss'`` of a dict output).
    nodes: list of int, optional
        Default: all nodes (channels) of the layer.

    Writes ``optimized_<layer_name>_<node>.png``; returns the Motifs (PWMs over the whole input).
    """
    network = network_of(model)
    device = device_of(network)
    input_shape = tuple(input_shape)
    symbols = alphabet_symbols(data)
    axis = next((i for i, size in enumerate(input_shape) if size == len(symbols)), None)
    if axis is None:
        raise ValueError(f'input_shape {input_shape} has no axis of the alphabet\'s size '
                         f'{len(symbols)}')
    modules = dict(network.named_modules())
    if layer_name != 'output' and layer_name not in modules:
        close = difflib.get_close_matches(layer_name, list(modules) + ['output'], n=3)
        raise ValueError(f'layer_name {layer_name!r} is not a layer of the network'
                         + (f'; did you mean {", ".join(map(repr, close))}?' if close else
                            f'; its layers: {", ".join(repr(m) for m in modules if m)}'))
    captured = {}

    def hook(module, inputs, output):
        captured['out'] = output
        raise _Stop

    def layer_output(x):
        if layer_name == 'output':
            return main_output(network(x))
        handle = modules[layer_name].register_forward_hook(hook)
        try:
            network(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        return captured.pop('out')

    with evaluating(network):
        width = layer_output(torch.full((1,) + input_shape, 1 / len(symbols),
                                        device=device)).shape[1]
        nodes = list(range(width)) if nodes is None else [int(n) for n in nodes]
        if any(not 0 <= n < width for n in nodes):
            raise ValueError(f'nodes {nodes}: layer {layer_name!r} has nodes 0 to {width - 1}')
        generator = torch.Generator().manual_seed(seed)
        logits = ((torch.rand((len(nodes),) + input_shape, generator=generator) * 2 - 1)
                  * bound).to(device).requires_grad_(True)
        optimizer = torch.optim.Adam([logits], lr=lr)
        picked = torch.tensor(nodes, device=device)
        with torch.enable_grad():  # the gradient of the input, in eval mode
            for _ in tqdm(range(steps), desc=f'optimized inputs of {layer_name}', unit='step',
                          leave=False, disable=None):
                out = layer_output(torch.softmax(logits, dim=axis + 1))
                score = out.reshape(len(nodes), width, -1).mean(dim=2)
                score = score[torch.arange(len(nodes), device=device), picked]
                loss = -score.sum() + l2 * logits.pow(2).mean() * len(nodes)
                logits.grad, = torch.autograd.grad(loss, [logits])
                optimizer.step()
    pwms = torch.softmax(logits.detach(), dim=axis + 1).movedim(axis + 1, -1)
    pwms = pwms.reshape(len(nodes), -1, len(symbols)).cpu().double().numpy()
    motifs = []
    for node, pwm in zip(nodes, pwms):
        label = node_names[node] if node_names is not None else str(node)
        motif = Motif(symbols, pwm / pwm.sum(axis=1, keepdims=True),
                      name=f'{layer_name}_{node}')
        motif.logo(os.path.join(folder, f'optimized_{layer_name}_{node}.png'), colors,
                   title=f'input that maximises {layer_name} node {label}', per_row=LOGO_ROW)
        motifs.append(motif)
    return motifs
