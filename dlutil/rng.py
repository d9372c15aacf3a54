"""Explicit randomness: seeds derived from the search seed, and RNG state that checkpoints carry.

Every trial owns a seed derived from ``(search seed, trial id)``, so a trial's result depends on
neither the order trials run in nor the process that runs them. The global generators that user
code may touch (``random``, ``numpy.random``, ``torch``) are captured into plain Python data so a
checkpoint stays loadable with ``torch.load(weights_only=True)``.
"""
import random

import numpy as np
import torch


def derive_seed(*keys):
    """Return a 63-bit seed derived from integer keys, e.g. ``derive_seed(search_seed, trial)``.

    Uses :class:`numpy.random.SeedSequence`, so nearby keys give unrelated streams.
    """
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def data_seed(search_seed):
    """The seed the def.py's loaders run under: one per search, the same in every process, so a
    loader that draws a random split draws the same one for any ``--workers``."""
    return derive_seed(search_seed, 2)


def seed_everything(seed):
    """Seed ``random``, ``numpy.random`` and ``torch`` (CPU and CUDA) from one integer.

    torch seeds CUDA lazily: this does not initialise it."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def get_global_state():
    """Capture the global RNG states as tensors, lists and numbers (``weights_only``-safe)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        'python': [version, list(internal), gauss],
        'numpy': [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_initialized():  # never the first touch of CUDA (--cpu stays off it)
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_global_state(state):
    """Restore what :func:`get_global_state` captured."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_initialized():
        cuda_states = state['cuda']
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
