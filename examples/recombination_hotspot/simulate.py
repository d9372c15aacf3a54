"""defiNETti's population-genetic example with msprime 1.x: is there a recombination hotspot?

One simulation: 198 haplotypes of a 30 kb region under the standard coalescent (diploid
population of N_e = 10,000, mutation rate 1.1e-8 per bp per generation, infinite sites). With
probability 1/2 the central 2 kb is a hotspot whose rate is 10–100 times the background (and at
least 10 times 1.25e-8). The 24 SNPs around the centre, 12 on each side, become a
(198, 24, 2) array: channel 0 the minor allele (1) at each SNP, channel 1 the distance to the
next SNP scaled by 4·N_e·μ (so of order 0.1–1; 0 for the last SNP), the same for every
haplotype. The label is one-hot: (1, 0) no hotspot, (0, 1) hotspot.

Where this differs from defiNETti's example (msprime 0.4): defiNETti draws the background rate
from the HapMap map of chromosome 1; this module, which has no such file, draws it
log-uniformly between 10^-0.5 and 10^0.5 times 1.25e-8 per bp per generation. defiNETti
simulates 52 kb; 30 kb gives enough SNPs on both sides (a region with fewer than 12 on a side
is simulated again) in about 60 % of the time.

Every random number comes from ``numpy.random`` (msprime gets its seeds from it), so the
simulation processes, which seed ``numpy.random`` per example, give the same examples whatever
their number.
"""
import numpy as np

from dlutil import extras

# through main.py (def.py imports this file) or make_data.py: one line saying what to install
msprime = extras.require('msprime', 'the recombination-hotspot example', extra='popgen')

HAPLOTYPES = 198   # CEU in defiNETti's paper
SNPS = 24
POPULATION_SIZE = 1.0e4
MUTATION_RATE = 1.1e-8
RECOMBINATION_RATE = 1.25e-8
LENGTH = 30_000     # ~75 SNPs on average, of which the central 24 are kept
HOTSPOT_LENGTH = 2_000
INTENSITY = (10, 100)
INPUT_SHAPE = (HAPLOTYPES, SNPS, 2)
OUTPUT_SHAPE = (2,)


def _rate_map(hotspot):
    background = RECOMBINATION_RATE * 10 ** np.random.uniform(-0.5, 0.5)
    if not hotspot:
        return msprime.RateMap(position=[0, LENGTH], rate=[background])
    heat = np.random.uniform(*INTENSITY) * max(RECOMBINATION_RATE / background, 1.0)
    start, end = (LENGTH - HOTSPOT_LENGTH) / 2, (LENGTH + HOTSPOT_LENGTH) / 2
    return msprime.RateMap(position=[0, start, end, LENGTH],
                           rate=[background, background * heat, background])


def _seed():
    return int(np.random.randint(1, 2 ** 31 - 1))


def encode(genotypes, positions):
    """The network's input from a region's SNPs around its centre.

    Parameters
    ----------
    genotypes: numpy.ndarray, shape=(snps, haplotypes), 0/1
    positions: numpy.ndarray, shape=(snps,), increasing

    Returns
    -------
    numpy.ndarray, shape=(haplotypes, SNPS, 2), float32, or None when fewer than 12 SNPs lie on
    one side of the centre or 24 or more inside the hotspot.
    """
    before = int(np.sum(positions < LENGTH / 2))
    inside = np.sum((positions >= (LENGTH - HOTSPOT_LENGTH) / 2)
                    & (positions < (LENGTH + HOTSPOT_LENGTH) / 2))
    if before < SNPS // 2 or len(positions) - before <= SNPS // 2 or inside >= SNPS:
        return None
    window = slice(before - SNPS // 2, before + SNPS // 2)
    alleles = genotypes[window].astype(np.float32)
    minor = alleles.sum(axis=1) >= alleles.shape[1] / 2
    alleles[minor] = 1 - alleles[minor]          # 1 marks the minor allele
    x = np.zeros((genotypes.shape[1], SNPS, 2), np.float32)
    x[:, :, 0] = alleles.T
    x[:, :-1, 1] = np.diff(positions[window]) * 4 * POPULATION_SIZE * MUTATION_RATE
    return x


def simulate_hotspot():
    """One example: ``(data, label)``, shapes (198, 24, 2) and (2,), as defiNETti's simulator."""
    hotspot = int(np.random.randint(0, 2))
    rate_map = _rate_map(hotspot)
    while True:  # too few SNPs around the centre: simulate again (rare)
        ts = msprime.sim_ancestry(samples=HAPLOTYPES // 2, ploidy=2,
                                  population_size=POPULATION_SIZE, recombination_rate=rate_map,
                                  sequence_length=LENGTH, discrete_genome=False,
                                  random_seed=_seed())
        ts = msprime.sim_mutations(ts, rate=MUTATION_RATE, model=msprime.BinaryMutationModel(),
                                   discrete_genome=False, random_seed=_seed())
        x = encode(ts.genotype_matrix(), ts.sites_position)
        if x is not None:
            break
    label = np.zeros(2, np.float32)
    label[hotspot] = 1
    return x, label
