"""Simulate the local-ancestry example's data with msprime: a reference panel and admixed people.

Demography (msprime 1.x, a coalescent with recombination): an ancestral population splits into
AFR and OOA ``--t-afr`` generations ago; OOA splits into EUR and EAS ``--t-eur-eas`` generations
ago; ``--t-admix`` generations ago an admixed population ADMIX forms from AFR, EUR and EAS in
proportions ``--proportions``. Sampled today: ``--reference`` individuals of each of AFR, EUR
and EAS (the reference panel) and ``--admixed`` individuals of ADMIX.

The true local ancestry of the admixed haplotypes comes from a census ``--t-admix`` + 0.5
generations ago: the ancestor of each stretch of an admixed haplotype at that time lives in one
of the three source populations (tskit's ``link_ancestors``).

Writes into ``--out``:

    reference.vcf.gz          phased VCF of the reference panel (bgzipped)
    reference.samples.tsv     sample<TAB>population, with a header line
    test.h5                   the admixed haplotypes with per-variant labels (genotype HDF5)
    query.vcf.gz              the admixed individuals as a VCF, on a random 90 % of the variants
                              plus some variants the panel lacks (alignment by position)
    query.truth.h5            the true labels of query.vcf.gz's haplotypes, on the panel's
                              variants
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))

SOURCES = ('AFR', 'EUR', 'EAS')


def demography(args):
    import msprime
    d = msprime.Demography()
    for name in ('AFR', 'EUR', 'EAS', 'ADMIX', 'OOA', 'ANC'):
        d.add_population(name=name, initial_size=args.ne)
    d.add_admixture(time=args.t_admix, derived='ADMIX', ancestral=list(SOURCES),
                    proportions=args.proportions)
    d.add_census(time=args.t_admix + 0.5)
    d.add_population_split(time=args.t_eur_eas, derived=['EUR', 'EAS'], ancestral='OOA')
    d.add_population_split(time=args.t_afr, derived=['AFR', 'OOA'], ancestral='ANC')
    d.sort_events()
    return d


def simulate(args):
    import msprime
    d = demography(args)
    samples = {name: args.reference for name in SOURCES}
    samples['ADMIX'] = args.admixed
    ts = msprime.sim_ancestry(samples=samples, demography=d, sequence_length=args.length,
                              recombination_rate=args.recombination_rate,
                              random_seed=args.seed)
    # two alleles per site, A ancestral and G derived (the binary model, with letters)
    model = msprime.MatrixMutationModel(alleles=['A', 'G'], root_distribution=[1, 0],
                                        transition_matrix=[[0, 1], [1, 0]])
    ts = msprime.sim_mutations(ts, rate=args.mutation_rate, model=model, random_seed=args.seed)
    return ts


def local_ancestry(ts, admixed_nodes):
    """True ancestry index (into SOURCES) of every admixed sample node at every site."""
    import msprime
    census = np.flatnonzero(ts.tables.nodes.flags & msprime.NODE_IS_CEN_EVENT)
    edges = ts.tables.link_ancestors(samples=admixed_nodes, ancestors=census)
    names = {ts.population(p).metadata['name']: p for p in range(ts.num_populations)}
    pop_to_label = {names[s]: i for i, s in enumerate(SOURCES)}
    positions = ts.tables.sites.position
    labels = np.full((len(admixed_nodes), len(positions)), -1, np.int64)
    row = {node: i for i, node in enumerate(admixed_nodes)}
    node_pops = ts.tables.nodes.population
    for left, right, parent, child in zip(edges.left, edges.right, edges.parent, edges.child):
        lo, hi = np.searchsorted(positions, [left, right])
        labels[row[child], lo:hi] = pop_to_label[node_pops[parent]]
    if np.any(labels < 0):
        raise RuntimeError('some admixed sites have no census ancestor')
    return labels


def write_vcf(ts, path, individuals, names, site_mask=None, extra=None):
    """A bgzipped VCF of ``individuals``; ``extra`` (positions) adds monomorphic-in-panel
    records the model does not know, to exercise alignment."""
    import io
    import pysam
    buffer = io.StringIO()
    ts.write_vcf(buffer, individuals=individuals, individual_names=names,
                 position_transform=lambda x: np.asarray(x).astype(np.int64) + 1,
                 site_mask=site_mask)
    lines = buffer.getvalue().splitlines(keepends=True)
    if extra is not None:
        header = [line for line in lines if line.startswith('#')]
        body = [line for line in lines if not line.startswith('#')]
        genotypes = '\t'.join(['0|0'] * len(names))
        body += [f'1\t{pos}\t.\tA\tC\t.\tPASS\t.\tGT\t{genotypes}\n' for pos in extra]
        body.sort(key=lambda line: int(line.split('\t', 2)[1]))
        lines = header + body
    plain = path[:-3]
    with open(plain, 'w') as handle:
        handle.writelines(lines)
    pysam.tabix_compress(plain, path, force=True)
    os.remove(plain)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data', help='output folder (default: %(default)s)')
    parser.add_argument('--reference', type=int, default=40,
                        help='reference individuals per population (default: %(default)s)')
    parser.add_argument('--admixed', type=int, default=20,
                        help='admixed individuals (default: %(default)s)')
    parser.add_argument('--length', type=float, default=10e6,
                        help='chromosome length in bp (default: %(default)g)')
    parser.add_argument('--ne', type=float, default=5000,
                        help='effective size of every population (default: %(default)g)')
    parser.add_argument('--t-afr', type=float, default=1500,
                        help='generations since the AFR/OOA split (default: %(default)g)')
    parser.add_argument('--t-eur-eas', type=float, default=600,
                        help='generations since the EUR/EAS split (default: %(default)g)')
    parser.add_argument('--t-admix', type=float, default=30,
                        help='generations since the admixture (default: %(default)g)')
    parser.add_argument('--proportions', type=float, nargs=3, default=[0.4, 0.3, 0.3],
                        metavar=('AFR', 'EUR', 'EAS'), help='admixture proportions')
    parser.add_argument('--recombination-rate', type=float, default=2e-8)
    parser.add_argument('--mutation-rate', type=float, default=1.25e-8)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args(argv)

    from dlutil.genotypes.h5 import haplotype_names, write_genotypes
    os.makedirs(args.out, exist_ok=True)
    ts = simulate(args)
    pops = {ts.population(p).metadata['name']: p for p in range(ts.num_populations)}
    ref_inds, ref_names, ref_pops, adm_inds = [], [], [], []
    for ind in ts.individuals():
        pop = ts.node(ind.nodes[0]).population
        name = [k for k, v in pops.items() if v == pop][0]
        if name == 'ADMIX':
            adm_inds.append(ind.id)
        else:
            ref_inds.append(ind.id)
            ref_names.append(f'{name}{sum(1 for p in ref_pops if p == name) + 1:03d}')
            ref_pops.append(name)
    adm_names = [f'ADMIX{i + 1:03d}' for i in range(len(adm_inds))]
    write_vcf(ts, os.path.join(args.out, 'reference.vcf.gz'), ref_inds, ref_names)
    with open(os.path.join(args.out, 'reference.samples.tsv'), 'w') as handle:
        handle.write('sample\tpopulation\n')
        handle.writelines(f'{s}\t{p}\n' for s, p in zip(ref_names, ref_pops))

    positions = ts.tables.sites.position.astype(np.int64) + 1
    adm_nodes = np.array([n for i in adm_inds for n in ts.individual(i).nodes])
    labels = local_ancestry(ts, adm_nodes)
    genotypes = ts.genotype_matrix(samples=adm_nodes).T.astype(np.uint8)  # (haplotypes, sites)
    write_genotypes(os.path.join(args.out, 'test.h5'), genotypes, positions,
                    haplotype_names(adm_names), '1', ancestries=sorted(SOURCES),
                    label=_relabel(labels))

    # the query: another "array" with 90 % of the variants and 200 the panel lacks
    rng = np.random.default_rng(args.seed)
    keep = rng.random(len(positions)) < 0.9
    taken = set(positions.tolist())
    extra = sorted(int(p) for p in rng.choice(np.arange(1, int(args.length)), 400, replace=False)
                   if int(p) not in taken)[:200]
    write_vcf(ts, os.path.join(args.out, 'query.vcf.gz'), adm_inds, adm_names,
              site_mask=~keep, extra=extra)
    write_genotypes(os.path.join(args.out, 'query.truth.h5'), genotypes, positions,
                    haplotype_names(adm_names), '1', ancestries=sorted(SOURCES),
                    label=_relabel(labels))
    print(f'{args.out}: reference panel {len(ref_inds)} individuals '
          f'({", ".join(f"{s} {ref_pops.count(s)}" for s in SOURCES)}), {len(positions)} '
          f'variants on {args.length / 1e6:g} Mb; {len(adm_inds)} admixed individuals in '
          f'test.h5 and query.vcf.gz ({int(keep.sum())} panel variants + {len(extra)} others); '
          f'ancestry breakpoints per admixed haplotype: '
          f'{np.mean([np.count_nonzero(np.diff(r)) for r in labels]):.1f}')


def _relabel(labels):
    """Indices into SOURCES → indices into sorted(SOURCES), the files' ``ancestries``."""
    order = np.array([sorted(SOURCES).index(s) for s in SOURCES])
    return order[labels].astype(np.uint8)


if __name__ == '__main__':
    main()
