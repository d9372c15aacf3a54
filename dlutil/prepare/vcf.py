"""``prepare vcf``: a phased VCF/BCF (+ a sample → population table) → a genotype HDF5 file.

The conversion is :func:`dlutil.genotypes.vcf.vcf_to_h5`; this module holds the subcommand's
options and its summary.
"""
import contextlib
import os
import sys

from dlutil.files import write_json
from dlutil.genotypes.vcf import vcf_to_h5
from dlutil.variants.command import vep_name as vcf_name

DESCRIPTION = """\
A phased VCF/BCF (plain or bgzipped) -> the genotype HDF5 file of local ancestry, streamed in
blocks of variants through cyvcf2 (a chromosome never sits in memory).

output OUT/<name>.h5, <name> the VCF's name without .vcf.gz (or .bcf): data uint8 (haplotypes,
variants), 0 REF, 1 ALT, 255 missing; positions int64; samples (<sample>_A, <sample>_B: left and
right of the |); attribute chromosome; with --samples also label uint8 (haplotypes,) and
attribute ancestries (the populations, sorted by name). OUT/<name>.summary.json holds the counts
printed; it is written after the .h5 (an old one is removed first), so a summary is always that
of the .h5 beside it. -o FILE.h5 (the older form) writes FILE.h5 and FILE.h5.summary.json.

handled: multi-allelic records are skipped (--multiallelic error to stop), a second record at a
position is skipped, unphased calls whose alleles differ (0/1, and 0/., where the haplotype of
the 0 is unknown) stop with an error (--unphased skip to drop their records); a missing allele
of a phased call (0|.) is 255 on its haplotype, ./. or . on both; haploid or polyploid calls,
unsorted positions and a second chromosome (without --chrom) are errors naming the record and
the sample; every skip is counted in the summary. A file htslib cannot read (truncated, damaged,
malformed) is an error naming the file, the record (its line or CHROM:POS) and what was expected.
"""

EXAMPLE = """\
example:
  {prog} vcf reference.vcf.gz --samples reference.samples.tsv -o data
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
                     help='output folder, e.g. data (created): writes OUT/<name>.h5 and '
                          'OUT/<name>.summary.json; a path ending in .h5 that is not a folder '
                          'is the older form, the output file itself')
    vcf.add_argument('--chrom', metavar='CHROM',
                     help='read only this chromosome (default: the file must hold one)')
    vcf.add_argument('--drop-unlabelled', action='store_true',
                     help='skip VCF samples that --samples does not list (default: an error)')
    vcf.add_argument('--multiallelic', choices=['skip', 'error'], default='skip',
                     help='multi-allelic records (default: %(default)s, counted)')
    vcf.add_argument('--unphased', choices=['skip', 'error'], default='error',
                     help='records with an unphased call whose alleles differ, 0/1 or 0/. (default: '
                          '%(default)s)')
    vcf.add_argument('--block', type=int, default=4096, metavar='N',
                     help='variants read and written per block (default: %(default)s)')
    return vcf


def output_paths(vcf, out):
    """The genotype file and its summary for ``-o out``: ``(OUT/<name>.h5,
    OUT/<name>.summary.json)``, or ``(OUT, OUT.summary.json)`` when ``out`` ends in .h5 and is
    not a folder (the older form; a one-line notice on stderr)."""
    if out.endswith('.h5') and not os.path.isdir(out):
        print(f'notice: -o {out} names the output file, the older form of -o; it takes a '
              f'folder now (-o {os.path.dirname(out) or "."} writes '
              f'{os.path.join(os.path.dirname(out), vcf_name(vcf) + ".h5")})', file=sys.stderr)
        return out, out + '.summary.json'
    stem = os.path.join(out, vcf_name(vcf))
    return stem + '.h5', stem + '.summary.json'


def run(args):
    """Convert, then write the summary; returns the summary."""
    if args.block < 1:
        raise ValueError(f'--block must be a positive integer, got {args.block}')
    out, summary_path = output_paths(args.vcf, args.out)
    folder = os.path.dirname(os.path.abspath(out))
    created = not os.path.isdir(folder)  # removed again if this run fails
    with contextlib.suppress(FileNotFoundError):
        os.remove(summary_path)  # written last: a summary is never beside another run's .h5
    try:
        summary = vcf_to_h5(args.vcf, out, args.samples, args.chrom,
                            'skip' if args.drop_unlabelled else 'error', args.multiallelic,
                            args.unphased, args.block,
                            None if args.compression == 'none' else args.compression)
    except BaseException:
        if created and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
        raise
    summary['summary'] = summary_path
    write_json(summary_path, summary)
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
    lines.append(f'summary: {summary["summary"]}')
    return '\n'.join(lines)


__all__ = ['add_parser', 'output_paths', 'run', 'format_summary']
