"""Batches as the training loop sees them: numpy or tensors, alone or in dicts.

A generator yields ``(x, y)`` or ``x`` alone; ``x`` and ``y`` are arrays, tensors, or dicts (or
lists) of them. These helpers move such trees to a device and back, count their rows and join
them, so the loop in :mod:`base_model` reads as plain PyTorch.
"""
import numpy as np
import torch


def resolve_device(device=None):
    """``None`` means CUDA when available, else CPU."""
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return torch.device(device)


def to_tensor(tree, device):
    """numpy arrays (or dicts/lists of them) → tensors on ``device``; float64 becomes float32."""
    if isinstance(tree, dict):
        return {key: to_tensor(value, device) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_tensor(value, device) for value in tree)
    tensor = tree if isinstance(tree, torch.Tensor) else torch.from_numpy(np.asarray(tree))
    if tensor.dtype == torch.float64:
        tensor = tensor.float()
    return tensor.to(device, non_blocking=True)


def to_input(tree, device, dtype=torch.float32):
    """An input batch on ``device``; integer and bool arrays (one-hot sequences, genotypes are
    stored so) become ``dtype`` there, after the transfer, so the copy stays small.
    ``dtype=None`` keeps them (token indices for an ``nn.Embedding``)."""
    if isinstance(tree, dict):
        return {key: to_input(value, device, dtype) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_input(value, device, dtype) for value in tree)
    tensor = to_tensor(tree, device)
    if dtype is not None and not (tensor.is_floating_point() or tensor.is_complex()):
        tensor = tensor.to(dtype)
    return tensor


def to_float32(tree):
    """Floating tensors (or dicts/lists of them) in float32, e.g. outputs of an autocast pass."""
    if isinstance(tree, dict):
        return {key: to_float32(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_float32(value) for value in tree)
    if isinstance(tree, torch.Tensor) and tree.is_floating_point():
        return tree.float()
    return tree


def to_numpy(tree):
    """Tensors (or dicts of them) → numpy arrays on the CPU."""
    if isinstance(tree, dict):
        return {key: to_numpy(value) for key, value in tree.items()}
    if isinstance(tree, torch.Tensor):
        tree = tree.detach()
        if tree.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16
            tree = tree.float()
        return tree.cpu().numpy()
    return np.asarray(tree)


def concat(parts):
    """Concatenate a list of batches (arrays, tensors, or dicts of them) along the first axis."""
    first = parts[0]
    if isinstance(first, dict):
        return {key: concat([part[key] for part in parts]) for key in first}
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    return np.concatenate(parts)


def detach(tree):
    if isinstance(tree, dict):
        return {key: detach(value) for key, value in tree.items()}
    return tree.detach()


def rows(tree):
    """Number of rows of a batch (array, tensor, or dict of them)."""
    if isinstance(tree, dict):
        return rows(next(iter(tree.values())))
    return len(tree)


def numel(tree):
    if isinstance(tree, dict):
        return sum(numel(value) for value in tree.values())
    return tree.numel() if isinstance(tree, torch.Tensor) else int(np.prod(tree.shape))


def split_batch(batch):
    """A generator item is ``(x, y)`` or ``x`` alone; returns ``(x, y or None)``."""
    if isinstance(batch, (tuple, list)):
        if len(batch) != 2:
            raise ValueError(f'a batch generator must yield (x, y) or x, got a '
                             f'{type(batch).__name__} of {len(batch)} items')
        return batch[0], batch[1]
    return batch, None


def iterate(generator, batch_size=None):
    """Batches of ``generator``; one with ``batch_size=None`` is served in ``batch_size`` rows."""
    if getattr(generator, 'batch_size', 0) is None and hasattr(generator, 'iter_batches'):
        return generator.iter_batches(batch_size)
    return iter(generator)


def scalar_metrics(values, where):
    """Check that a metrics dict holds scalars and return it with Python floats."""
    if not isinstance(values, dict):
        raise TypeError(f'{where} must return a dict of scalars, got {type(values).__name__}')
    out = {}
    for key, value in values.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f'{where} returned a non-scalar value for {key!r}: '
                            f'{type(value).__name__}') from None
    return out


def count_parameters(network):
    """Number of trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)
