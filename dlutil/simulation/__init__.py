"""Training on simulations made on the fly: a simulator's examples, batched by processes.

    generator.py   SimulationBatchGenerator: the seeded stream, its state, fixed sets
    pool.py        the simulation processes and their queues
    _worker.py     what a simulation process runs (numpy only)
"""
from dlutil.errors import SimulationError
from dlutil.simulation.generator import SimulationBatchGenerator

__all__ = ['SimulationBatchGenerator', 'SimulationError']
