"""A Keras-style summary of any network: its layers in call order, output shapes, parameters.

    print(summary(network, (4, 200)))   # (channels, length) of one input; the batch is added

pysster's ``print_summary`` prints Keras' table; this is the same for a PyTorch network, found by
running one dummy batch through it with forward hooks.
"""
import torch
from torch import nn

from dlutil.training.evaluation import device_of, evaluating

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def summary(network, input_shape, batch_size=2, dtype=torch.float32):
    """The layers ``network`` calls on an input of ``input_shape``, as a text table.

    A layer is a module called directly by the network's own code: a module called from inside
    another layer (e.g. the cells of a recurrent layer) counts toward that layer, and containers
    (``nn.Sequential``) are looked through. Parameters of a layer include its submodules'.

    Parameters
    ----------
    network: torch.nn.Module
    input_shape: tuple of int
        Shape of one input, without the batch axis, e.g. ``(4, 200)``.
    batch_size: int
        Rows of the dummy batch (zeros); shapes are printed with ``None`` for the batch.

    Returns
    -------
    str: one line per layer (name, type, output shape, parameters), then the totals.
    """
    calls, depth, handles = [], [0], []

    def before(module, args):
        if depth[0] == 0:
            calls.append([module, None])
        depth[0] += 1

    def after(module, args, output):
        depth[0] -= 1
        if depth[0] == 0:
            calls[-1][1] = output

    names = {}
    for name, module in network.named_modules():
        if module is network or isinstance(module, _CONTAINERS):
            continue
        names.setdefault(module, name)
        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    try:
        with evaluating(network):
            network(torch.zeros((batch_size, *input_shape), dtype=dtype,
                                device=device_of(network)))
    finally:
        for handle in handles:
            handle.remove()

    rows = [('layer (type)', 'output shape', 'params')]
    for module, output in calls:
        params = sum(p.numel() for p in module.parameters())
        rows.append((f'{names[module]} ({type(module).__name__})', _shape(output),
                     f'{params:,}'))
    total = sum(p.numel() for p in network.parameters())
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    line = '-' * (sum(widths) + 4)
    text = [line]
    for i, row in enumerate(rows):
        text.append(f'{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}')
        if i == 0:
            text.append(line)
    text += [line, f'total params: {total:,}', f'trainable params: {trainable:,}', line]
    return '\n'.join(text)


def _shape(output):
    if isinstance(output, torch.Tensor):
        return str((None, *output.shape[1:]))
    if isinstance(output, dict):
        return ', '.join(f'{k}: {_shape(v)}' for k, v in output.items())
    if isinstance(output, (tuple, list)):
        return ', '.join(_shape(v) for v in output)
    return type(output).__name__
