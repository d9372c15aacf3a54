"""The batch generators a def.py returns: ``from batch_generator import H5pyBatchGenerator``.

A facade: the generators live in :mod:`dlutil.data` (arrays in memory, HDF5 files),
:mod:`dlutil.genotypes` (haplotypes with admixture on the fly) and :mod:`dlutil.simulation`
(examples simulated on the fly).
"""
from dlutil.data.hdf5 import H5pyBatchGenerator
from dlutil.data.matrix import MatrixBatchGenerator
from dlutil.errors import SimulationError
from dlutil.genotypes.generator import GenotypeBatchGenerator
from dlutil.simulation.generator import SimulationBatchGenerator

__all__ = ['MatrixBatchGenerator', 'H5pyBatchGenerator', 'GenotypeBatchGenerator',
           'SimulationBatchGenerator', 'SimulationError']
