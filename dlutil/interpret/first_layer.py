"""The first layer of a sequence network: finding its convolution over the one-hot input,
hooking it, and the same convolution as a plain 1-D one over (n, alphabet, length) (dilation
gaps as zero weights), checked to reproduce what the network computes.
"""
import copy

import torch
import torch.nn.functional as F
from torch import nn

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


class FirstLayerHooks:
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


def conv1d_form(conv, name, in_shape):
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


def as_sequences(x, layout):
    """The convolution's input as (n, alphabet, length)."""
    return {'conv1d': x, 'height1': x[:, :, 0, :] if x.dim() == 4 else x,
            'channel1': x[:, 0] if x.dim() == 4 else x}[layout]


def conv1d(sequences, form, kernels=slice(None)):
    x = F.pad(sequences, form['pad'])
    return F.conv1d(x, form['weight'][kernels].to(x), form['bias'][kernels].to(x),
                    stride=form['stride'])


def check_first(hooks, form):
    """No layer with weights runs before the convolution, and it sees one-hot sequences:
    values in [0, 1], at most 1 per position (padding, dropout in eval mode, a transpose or
    ``F.one_hot`` before it are fine)."""
    learned = [m for m in hooks.before if any(True for _ in m.parameters(recurse=False))]
    if learned:
        raise ValueError(f'the first convolution {hooks.name!r} runs after '
                         f'{type(learned[0]).__name__}, a layer with weights; {NOT_FIRST}')
    sequences = as_sequences(hooks.conv_in, form['layout']).float()
    if sequences.numel() and (sequences.min() < 0 or sequences.max() > 1
                              or sequences.sum(dim=1).max() > 1 + 1e-4):
        raise ValueError(f'the first convolution {hooks.name!r} gets values from '
                         f'{float(sequences.min()):.3g} to {float(sequences.max()):.3g} (up to '
                         f'{float(sequences.sum(dim=1).max()):.3g} per position), not one-hot '
                         f'sequences; {NOT_FIRST}')
    reference = conv1d(sequences, form)
    got = hooks.conv_out.float()
    tolerance = 1e-3 * (1 + float(got.abs().max()))
    if got.numel() != reference.numel() or not torch.allclose(
            reference, got.reshape(reference.shape), rtol=1e-3, atol=tolerance):
        raise ValueError(f'the first convolution {hooks.name!r} could not be reproduced as a '
                         f'1-D convolution over the sequence; {NOT_FIRST}')
