"""Simulate the local-ancestry example's data from a published human demography (stdpopsim).

The demography is a model of stdpopsim's catalog (default ``AmericanAdmixture_4B18``, Browning
et al. 2018: African, European and East Asian panels with their growth and migration, and an
American population admixed 12 generations ago from the three, in unequal shares 1/6 AFR,
1/3 EUR, 1/2 ASIA). The chromosome is a stretch of a human chromosome (``--chromosome``,
``--left``, ``--length``) at the species' rates: the contig's mean recombination rate (no map
download) or, with ``--genetic-map``, a user's map (``position cM`` per line, or PLINK ``.map``);
the contig's mutation rate, two alleles (A ancestral, G derived) per site. msprime runs the
coalescent; stdpopsim gives the model and the rates.

Sampled today: ``--reference`` individuals of each source population (the reference panel) and
``--admixed`` of the admixed one. The true local ancestry of an admixed stretch is the
population of its ancestor at a census just older than the oldest event that moves lineages out
of the admixed population (tskit's ``link_ancestors``). ``--switch-error-rate`` swaps the phase
of the admixed individuals' two haplotypes after each heterozygous site with that probability
(phasing switch errors, as a statistical phaser makes them); the truth follows the swapped
haplotypes.

Writes into ``--out``:

    reference.vcf.gz          phased VCF of the reference panel (bgzipped)
    reference.samples.tsv     sample<TAB>population, with a header line
    test.h5                   the admixed haplotypes with per-variant labels (genotype HDF5)
    query.vcf.gz              the admixed individuals as a VCF, on a random 90 % of the variants
                              plus some variants the panel lacks (alignment by position)
    query.truth.h5            the true labels of query.vcf.gz's haplotypes, on the panel's
                              variants
    genetic_map.txt           "position cM" of the stretch: the rate it was simulated with
"""
import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def catalog_model(name):
    """The stdpopsim HomSap model ``name`` and the species."""
    import stdpopsim
    species = stdpopsim.get_species('HomSap')
    with warnings.catch_warnings():  # renamed models warn; the name still works
        warnings.simplefilter('ignore')
        return species, species.get_demographic_model(name)


def census_time(demography, admixed):
    """Just older than the oldest event that moves lineages out of ``admixed`` (a pulse or the
    population's founding), so that each admixed lineage sits in one source at the census."""
    names = {admixed, demography[admixed].id}  # events name populations by name or index
    times = [e.time for e in demography.events
             if getattr(e, 'source', None) in names or getattr(e, 'derived', None) in names
             or admixed in (getattr(e, 'derived', None) or [])]
    if not times:
        raise ValueError(f'population {admixed} receives no admixture in this model')
    return max(times) + 0.5


def simulate(args):
    """The tree sequence with mutations, and the names of the source populations."""
    import msprime
    species, model = catalog_model(args.model)
    demography = model.model.copy()
    names = [p.name for p in demography.populations]
    if args.admixed_population not in names:
        raise SystemExit(f'--admixed-population {args.admixed_population!r}: model '
                         f'{args.model} has populations {names}')
    sources = [p.name for p in model.populations
               if p.allow_samples and p.name != args.admixed_population]
    demography.add_census(time=census_time(demography, args.admixed_population))
    demography.sort_events()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        contig = species.get_contig(args.chromosome, left=args.left,
                                    right=args.left + args.length)
    rate_map = contig.recombination_map
    if args.genetic_map:
        rate_map = user_rate_map(args.genetic_map, rate_map.sequence_length, args.left,
                                 args.left + args.length)
    samples = {name: args.reference for name in sources}
    samples[args.admixed_population] = args.admixed
    ts = msprime.sim_ancestry(samples=samples, demography=demography,
                              recombination_rate=rate_map, random_seed=args.seed)
    mutation = msprime.MatrixMutationModel(alleles=['A', 'G'], root_distribution=[1, 0],
                                           transition_matrix=[[0, 1], [1, 0]])
    ts = msprime.sim_mutations(ts, rate=contig.mutation_rate, model=mutation,
                               random_seed=args.seed)
    return ts, sources, args.chromosome.removeprefix('chr'), rate_map


def user_rate_map(path, sequence_length, left, right):
    """An msprime RateMap from a ``position cM`` (or PLINK .map) file, zero outside
    [left, right)."""
    import msprime
    from dlutil.genotypes.admixture import read_genetic_map
    grid = np.linspace(left, right, 1001)
    cm = read_genetic_map(path, grid)
    rates = np.diff(cm) / 100 / np.diff(grid)  # Morgans per bp
    position = np.concatenate([[0], grid, [sequence_length]])
    return msprime.RateMap(position=position, rate=np.concatenate([[0], rates, [0]]))


def local_ancestry(ts, admixed_nodes, sources):
    """True ancestry index (into ``sources``) of every admixed sample node at every site."""
    import msprime
    census = np.flatnonzero(ts.tables.nodes.flags & msprime.NODE_IS_CEN_EVENT)
    edges = ts.tables.link_ancestors(samples=admixed_nodes, ancestors=census)
    names = {ts.population(p).metadata['name']: p for p in range(ts.num_populations)}
    pop_to_label = {names[s]: i for i, s in enumerate(sources)}
    positions = ts.tables.sites.position
    labels = np.full((len(admixed_nodes), len(positions)), -1, np.int64)
    row = {node: i for i, node in enumerate(admixed_nodes)}
    node_pops = ts.tables.nodes.population
    for left, right, parent, child in zip(edges.left, edges.right, edges.parent, edges.child):
        lo, hi = np.searchsorted(positions, [left, right])
        labels[row[child], lo:hi] = pop_to_label[node_pops[parent]]
    if np.any(labels < 0):
        raise RuntimeError('some admixed sites have no census ancestor in a source population')
    return labels


def switch_errors(genotypes, labels, rate, rng):
    """Swap each individual's two haplotypes (rows 2i, 2i+1) after a heterozygous site with
    probability ``rate``; returns new genotypes and labels, and the number of switches."""
    genotypes, labels = genotypes.copy(), labels.copy()
    switches = 0
    for i in range(0, len(genotypes), 2):
        het = np.flatnonzero(genotypes[i] != genotypes[i + 1])
        flips = het[rng.random(len(het)) < rate] + 1
        switches += len(flips)
        # parity of the switches so far decides which original haplotype each site comes from
        swapped = np.zeros(genotypes.shape[1] + 1, np.int64)
        np.add.at(swapped, flips, 1)
        swapped = (np.cumsum(swapped)[:-1] % 2).astype(bool)
        for array in (genotypes, labels):
            a, b = array[i].copy(), array[i + 1].copy()
            array[i, swapped], array[i + 1, swapped] = b[swapped], a[swapped]
    return genotypes, labels, switches


def write_vcf(path, genotypes, positions, names, chromosome, extra=None):
    """A bgzipped phased VCF; ``genotypes`` (haplotypes, sites), two rows per individual.
    ``extra`` positions add records the model does not know, to exercise alignment."""
    import pysam
    plain = path[:-3]
    header = ['##fileformat=VCFv4.2', '##source=dlutil examples/local_ancestry/simulate.py',
              f'##contig=<ID={chromosome}>',
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
              '\t'.join(['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO',
                         'FORMAT', *names])]
    rows = [(int(p), 'G', genotypes[:, j]) for j, p in enumerate(positions)]
    rows += [(int(p), 'C', np.zeros(len(genotypes), np.uint8)) for p in (extra or [])]
    rows.sort(key=lambda r: r[0])
    with open(plain, 'w') as handle:
        handle.write('\n'.join(header) + '\n')
        for position, alt, column in rows:
            calls = '\t'.join(f'{a}|{b}' for a, b in zip(column[0::2], column[1::2]))
            handle.write(f'{chromosome}\t{position}\t.\tA\t{alt}\t.\tPASS\t.\tGT\t{calls}\n')
    pysam.tabix_compress(plain, path, force=True)
    os.remove(plain)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data', help='output folder (default: %(default)s)')
    parser.add_argument('--model', default='AmericanAdmixture_4B18',
                        help='a stdpopsim HomSap demographic model (default: %(default)s)')
    parser.add_argument('--admixed-population', default='ADMIX',
                        help='the admixed population of the model (default: %(default)s); the '
                             'other sampled populations are the reference panel')
    parser.add_argument('--reference', type=int, default=40,
                        help='reference individuals per population (default: %(default)s)')
    parser.add_argument('--admixed', type=int, default=20,
                        help='admixed individuals (default: %(default)s)')
    parser.add_argument('--chromosome', default='chr22',
                        help='the HomSap chromosome (default: %(default)s)')
    parser.add_argument('--left', type=float, default=20e6,
                        help='start of the simulated stretch, bp (default: %(default)g)')
    parser.add_argument('--length', type=float, default=10e6,
                        help='length of the stretch, bp (default: %(default)g)')
    parser.add_argument('--genetic-map', default=None,
                        help='a genetic map ("position cM" per line, or PLINK .map) instead of '
                             "the species' mean recombination rate")
    parser.add_argument('--switch-error-rate', type=float, default=0.0,
                        help='phasing switch errors of the admixed individuals per '
                             'heterozygous site (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args(argv)
    if not 0 <= args.switch_error_rate <= 1:
        parser.error(f'--switch-error-rate must be in [0, 1], got {args.switch_error_rate}')
    from dlutil import extras
    missing = extras.missing(('stdpopsim', 'msprime', 'pysam'), 'simulate.py', extra='genotypes')
    if missing:  # all of them at once, before minutes of simulation
        sys.exit('error: ' + '\nerror: '.join(missing))

    from dlutil.genotypes.h5 import haplotype_names, write_genotypes
    os.makedirs(args.out, exist_ok=True)
    ts, sources, chromosome, rate_map = simulate(args)
    population = {ts.population(p).metadata['name']: p for p in range(ts.num_populations)}
    panel_nodes, panel_names, panel_pops = [], [], []
    for name in sources:
        inds = [i for i in ts.individuals()
                if ts.node(i.nodes[0]).population == population[name]]
        for k, ind in enumerate(inds):
            panel_nodes += list(ind.nodes)
            panel_names.append(f'{name}{k + 1:03d}')
            panel_pops.append(name)
    admixed_nodes = np.array([n for i in ts.individuals() for n in i.nodes
                              if ts.node(n).population == population[args.admixed_population]])
    admixed_names = [f'{args.admixed_population}{i + 1:03d}'
                     for i in range(len(admixed_nodes) // 2)]
    positions = ts.tables.sites.position.astype(np.int64) + 1
    # msprime may put two sites at one integer position: keep the first
    keep_sites = np.concatenate([[True], np.diff(positions) > 0])
    positions = positions[keep_sites]
    panel = ts.genotype_matrix(samples=np.array(panel_nodes)).T[:, keep_sites].astype(np.uint8)
    write_vcf(os.path.join(args.out, 'reference.vcf.gz'), panel, positions, panel_names,
              chromosome)
    with open(os.path.join(args.out, 'reference.samples.tsv'), 'w') as handle:
        handle.write('sample\tpopulation\n')
        handle.writelines(f'{s}\t{p}\n' for s, p in zip(panel_names, panel_pops))

    labels = local_ancestry(ts, admixed_nodes, sources)[:, keep_sites]
    genotypes = ts.genotype_matrix(samples=admixed_nodes).T[:, keep_sites].astype(np.uint8)
    rng = np.random.default_rng(args.seed)
    genotypes, labels, switches = switch_errors(genotypes, labels, args.switch_error_rate, rng)
    order = np.array([sorted(sources).index(s) for s in sources])
    truth = order[labels].astype(np.uint8)  # indices into sorted(sources), the files' names
    names = haplotype_names(admixed_names)
    write_genotypes(os.path.join(args.out, 'test.h5'), genotypes, positions, names, chromosome,
                    ancestries=sorted(sources), label=truth)

    # the query: another "array" with 90 % of the variants and 200 the panel lacks
    keep = rng.random(len(positions)) < 0.9
    taken = set(positions.tolist())
    candidates = rng.choice(np.arange(int(args.left) + 1, int(args.left + args.length)), 400,
                            replace=False)
    extra = sorted(int(p) for p in candidates if int(p) not in taken)[:200]
    write_vcf(os.path.join(args.out, 'query.vcf.gz'), genotypes[:, keep], positions[keep],
              admixed_names, chromosome, extra=extra)
    write_genotypes(os.path.join(args.out, 'query.truth.h5'), genotypes, positions, names,
                    chromosome, ancestries=sorted(sources), label=truth)
    grid = np.linspace(args.left, args.left + args.length, 101)
    cm = np.array([rate_map.get_cumulative_mass(g) for g in grid]) * 100
    with open(os.path.join(args.out, 'genetic_map.txt'), 'w') as handle:
        handle.write('position\tcM\n')
        handle.writelines(f'{int(g)}\t{c - cm[0]:.6f}\n' for g, c in zip(grid, cm))
    shares = np.bincount(labels.ravel(), minlength=len(sources)) / labels.size
    print(f'{args.out}: {args.model} on {args.chromosome}:{args.left:.0f}-'
          f'{args.left + args.length:.0f}; reference panel {len(panel_names)} individuals '
          f'({", ".join(f"{s} {panel_pops.count(s)}" for s in sources)}), {len(positions)} '
          f'variants; {len(admixed_names)} admixed individuals in test.h5 and query.vcf.gz '
          f'({int(keep.sum())} panel variants + {len(extra)} others); ancestry shares '
          f'{", ".join(f"{s} {v:.2f}" for s, v in zip(sources, shares))}; ancestry '
          f'breakpoints per admixed haplotype '
          f'{np.mean([np.count_nonzero(np.diff(r)) for r in labels]):.1f}; switch errors '
          f'{switches}')


if __name__ == '__main__':
    main()
