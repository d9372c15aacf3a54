"""Simulators for the tests of dlutil.simulation and models.exchangeable.

They live in a module of their own, importing numpy alone, so that simulation processes (which
import the simulator's module by name) start quickly.
"""
import os

import numpy as np


def gaussian():
    """defiNETti's Gaussian: μ ~ Beta(5, 10), σ ~ U(6, 10), 100 draws; label (μ, σ)."""
    mu = np.random.beta(5, 10)
    sigma = np.random.uniform(6, 10)
    return np.random.normal(mu, sigma, (100, 1)), np.array([mu, sigma])


def small(rng):
    """A (4, 3) example whose label is its sum; takes a numpy Generator."""
    x = rng.normal(size=(4, 3))
    return x, np.array([x.sum()])


def sometimes_raises():
    """Raises on about one example in six (which ones depends on the example's seed only)."""
    if np.random.randint(0, 6) == 0:
        raise RuntimeError('negative branch length')
    return np.zeros((4, 3)), np.zeros(1)


def wrong_shape():
    return np.zeros((3, 4)), np.zeros(1)


def not_a_pair():
    return np.zeros((4, 3))


def dies():
    """Kills its process outright on about one example in four (a crash in compiled code)."""
    if np.random.randint(0, 4) == 0:
        os._exit(3)
    return np.zeros((4, 3)), np.zeros(1)


_IMPORTED_BY = os.getpid()


def hangs_in_a_process():
    """Fine in the process that imported this module; hangs in a forked simulation process."""
    if os.getpid() != _IMPORTED_BY:
        import time
        time.sleep(10 ** 6)
    return np.zeros((4, 3)), np.zeros(1)
