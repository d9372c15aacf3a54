"""``prepare vcf``: a phased VCF/BCF (+ a sample → population table) → a genotype HDF5 file.

The conversion is :func:`dlutil.genotypes.vcf.vcf_to_h5`; this module holds the subcommand's
options and its summary.
"""

from dlutil.genotypes.vcf import vcf_to_h5

DESCRIPTION = """\
A phased VCF/BCF (plain or bgzipped) -> the genotype HDF5 file of local ancestry, streamed in
blocks of variants through cyvcf2 (a chromosome never sits in memory).

output OUT (.h5): data uint8 (haplotypes, variants), 0 REF, 1 ALT, 255 missing; positions int64;
samples (<sample>_A, <sample>_B: left and right of the |); attribute chromosome; with --samples
also label uint8 (haplotypes,) and attribute ancestries (the populations, sorted by name).
OUT.summary.json holds the counts printed.

handled: multi-allelic records are skipped (--multiallelic error to stop), a second record at a
position is skipped, unphased heterozygous calls stop with an error (--unphased skip to drop
their records), unsorted positions and a second chromosome (without --chrom) are errors; every
skip is counted in the summary.
"""

EXAMPLE = """\
example:
  {prog} vcf reference.vcf.gz --samples reference.samples.tsv -o data/reference.h5
"""


def add_parser(commands, formatter, prog):
    """Add the ``vcf`` subcommand to ``commands`` (an argparse subparsers object)."""
    vcf = commands.add_parser(
        'vcf', formatter_class=formatter, epilog=EXAMPLE.format(prog=prog),
        help='a phased VCF/BCF (+ a sample -> population TSV) -> genotype HDF5 for local '
             'ancestry', description=DESCRIPTION)
    vcf.add_argument('vcf', metavar='VCF', help='phased VCF or BCF, plain or bgzipped')
    vcf.add_argument('--samples', metavar='TSV',
                     help='two tab-separated columns, sample and population (a header line '
                          'such as "sample<TAB>population" may be present): writes the labels; '
                          'without it the file has none (query data)')
    vcf.add_argument('-o', '--out', required=True, metavar='OUT',
                     help='output file, e.g. data/reference.h5')
    vcf.add_argument('--chrom', metavar='CHROM',
                     help='read only this chromosome (default: the file must hold one)')
    vcf.add_argument('--drop-unlabelled', action='store_true',
                     help='skip VCF samples that --samples does not list (default: an error)')
    vcf.add_argument('--multiallelic', choices=['skip', 'error'], default='skip',
                     help='multi-allelic records (default: %(default)s, counted)')
    vcf.add_argument('--unphased', choices=['skip', 'error'], default='error',
                     help='records with an unphased heterozygous call (default: %(default)s)')
    vcf.add_argument('--block', type=int, default=4096, metavar='N',
                     help='variants read and written per block (default: %(default)s)')
    vcf.add_argument('--compression', choices=['none', 'lzf', 'gzip'], default='none',
                     help='compress data (default: %(default)s)')
    vcf.add_argument('--debug', action='store_true', help='full tracebacks on errors')
    return vcf


def run(args):
    """Convert, write OUT.summary.json; returns the summary."""
    if args.block < 1:
        raise ValueError(f'--block must be a positive integer, got {args.block}')
    summary = vcf_to_h5(args.vcf, args.out, args.samples, args.chrom,
                        'skip' if args.drop_unlabelled else 'error', args.multiallelic,
                        args.unphased, args.block,
                        None if args.compression == 'none' else args.compression)
    from dlutil.files import write_json
    write_json(args.out + '.summary.json', summary)
    return summary


def format_summary(summary):
    """The summary as a few lines for the terminal."""
    lines = [f'{summary["out"]}: {summary["haplotypes"]} haplotypes x {summary["variants"]} '
             f'variants on chromosome {summary["chromosome"]}']
    if summary.get('haplotypes_per_ancestry'):
        lines.append('ancestries: ' + ', '.join(f'{a} {n}' for a, n in
                                                summary['haplotypes_per_ancestry'].items()))
    else:
        lines.append('labels: none')
    skipped = {k: v for k, v in summary['skipped'].items() if v}
    for key in ('unlabelled_samples_skipped', 'table_samples_not_in_vcf'):
        if summary.get(key):
            skipped[key] = summary[key]
    lines.append('skipped: ' + (', '.join(f'{v} ({k.replace("_", " ")})'
                                          for k, v in skipped.items()) or 'nothing'))
    lines.append(f'summary: {summary["out"]}.summary.json')
    return '\n'.join(lines)


__all__ = ['add_parser', 'run', 'format_summary']
