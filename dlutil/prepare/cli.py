"""The data-preparation command: ``python -m dlutil.prepare`` (installed as ``dlutil-prepare``).

Each subcommand turns one kind of input into chunked HDF5 files for the batch generators and
prints a summary; bad input exits 1 with a message naming the file (a traceback with --debug).
"""
import argparse
import os
import sys

from dlutil._program import program_name, run_cli
from dlutil.prepare.options import LAYOUTS, OPTION_DEFAULTS, TASKS
from dlutil.prepare.sequences import prepare_bed, prepare_fasta
from dlutil.sequences.onehot import UNKNOWN_POLICIES
from dlutil.prepare import vcf as vcf_command


EXAMPLES = """\
examples:
  {prog} fasta seqs.fa.gz --labels labels.tsv -o data
  {prog} fasta neg.fa pos.fa --one-per-class -o data --layout 4,1,L
  {prog} bed peaks.bed -g hg38.fa -L 1000 -o data --split chrom \\
      --valid-chroms chr8 --test-chroms chr9
  {prog} bed regions.bed -g hg38.fa -L 1000 -o pred --no-split --label-columns none

output: OUT/train.h5, OUT/valid.h5, OUT/test.h5 (OUT/all.h5 with --no-split) and
OUT/summary.json. Datasets: data float32 (n, 4, L) or (n, 4, 1, L), rows A, C, G, T; N and
other IUPAC codes 0.25 in every row (--iupac fractional: spread over their bases; --iupac
zeros: all-zero columns); label
(int64 class indices, or float32 0/1 or regression values, (n,) or (n, targets)); name (str:
read it with f['name'].asstr()[:]); bed also: chrom, start, end of the window. Attributes:
task, targets, classes, layout, length. Read them with
batch_generator.H5pyBatchGenerator('OUT/train.h5', batch_size, shuffle=True).
The files appear when complete, summary.json last: a folder with a summary.json holds the files
it describes.
"""


def _names(text):
    """'chr8,chr9' -> ['chr8', 'chr9']"""
    return [part.strip() for part in text.split(',') if part.strip()]


def _add_label_options(parser, default_names):
    group = parser.add_argument_group('labels')
    group.add_argument('--task', choices=TASKS, default='auto',
                       help='class: one column of class indices 0..K-1 (label int64, (n,)); '
                            'multilabel: 0/1 per target (float32); regression: any numbers '
                            '(float32); auto: 0/1 values are class (one column) or multilabel '
                            '(several), anything else regression (default: %(default)s)')
    group.add_argument('--class-names', type=_names, metavar='NAMES',
                       help='comma-separated class names, e.g. neg,pos (default: '
                            f'{default_names})')


def _add_output_options(parser):
    group = parser.add_argument_group('output')
    group.add_argument('-o', '--out', required=True, metavar='OUT',
                       help='output folder, e.g. data (created)')
    group.add_argument('--split', choices=['random', 'chrom', 'none'], default='random',
                       help='random: each row drawn into valid/test with the --valid/--test '
                            'probabilities (seeded); chrom: by chromosome, with --valid-chroms/'
                            '--test-chroms; none: one file OUT/all.h5 (default: %(default)s)')
    group.add_argument('--no-split', dest='split', action='store_const', const='none',
                       help='the same as --split none: write OUT/all.h5, e.g. for prediction')
    group.add_argument('--valid', type=float, default=0.1, metavar='F',
                       help='--split random: fraction of rows for valid.h5 (default: '
                            '%(default)s; 0 writes no valid.h5)')
    group.add_argument('--test', type=float, default=0.1, metavar='F',
                       help='--split random: fraction of rows for test.h5 (default: '
                            '%(default)s; 0 writes no test.h5)')
    group.add_argument('--seed', type=int, default=0,
                       help='seed of the --split random draw and of the order of train.h5. '
                            'Left out: %(default)s, so the same input gives the same files on '
                            'every run')
    group.add_argument('--valid-chroms', type=_names, action='extend', default=[],
                       metavar='CHROMS', help='--split chrom: chromosomes for valid.h5, e.g. '
                                              'chr8 or chr8,chr10 (repeatable)')
    group.add_argument('--test-chroms', type=_names, action='extend', default=[],
                       metavar='CHROMS', help='--split chrom: chromosomes for test.h5, e.g. chr9')
    group.add_argument('--layout', choices=LAYOUTS, default='4,L',
                       help='shape of a row of data: 4,L for Conv1d models, 4,1,L for Conv2d '
                            'with (1, k) kernels (default: %(default)s)')
    group.add_argument('--iupac', choices=UNKNOWN_POLICIES, default='uniform',
                       help='N and other IUPAC codes: uniform = 0.25 in all four rows; '
                            'fractional = spread over their bases, R = A/G -> 0.5, 0.5; '
                            'zeros = an all-zero column, as pysster (any other character too) '
                            '(default: %(default)s)')
    group.add_argument('--chunk-rows', type=int, default=256, metavar='N',
                       help='rows per HDF5 chunk and per write (default: %(default)s)')
    group.add_argument('--shuffle-mb', type=float, default=64, metavar='MB',
                       help='train.h5 is written in a random order (from --seed), so that a '
                            'file made class by class is not sorted by class; this much memory '
                            'does it, in two passes over the file; 0 keeps the input order '
                            '(default: %(default)s)')


def _add_shared_options(parser):
    """The options every subcommand has."""
    parser.add_argument('--compression', choices=['none', 'lzf', 'gzip'], default='none',
                        help='compress the data dataset: lzf about 5x smaller for one-hot '
                             'data, gzip about 15x, both slower to write and to read '
                             '(default: %(default)s)')
    parser.add_argument('--debug', action='store_true', help='full tracebacks on errors')


def build_parser():
    prog = program_name(installed='dlutil-prepare', module='dlutil.prepare')
    formatter = argparse.RawDescriptionHelpFormatter
    examples = EXAMPLES.format(prog=prog)
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=formatter, epilog=examples,
        description='Turn sequence files into one-hot HDF5 training data for '
                    'H5pyBatchGenerator: FASTA + labels, or BED intervals + a genome, split '
                    f'into train/valid/test, streamed with bounded memory; or a phased VCF into '
                    f'genotype HDF5 for local ancestry. "{prog} fasta --help", "{prog} bed '
                    f'--help" and "{prog} vcf --help" list the options.')
    commands = parser.add_subparsers(dest='command', required=True, metavar='{fasta,bed,vcf}')
    fasta = commands.add_parser(
        'fasta', formatter_class=formatter, epilog=examples,
        help='FASTA files + a labels TSV (or one FASTA per class) -> HDF5',
        description='FASTA files (plain or .gz, multi-line records) + labels -> one-hot HDF5.')
    fasta.add_argument('fastas', nargs='+', metavar='FASTA',
                       help='FASTA files, read record by record; a record is named by the first '
                            'word of its header')
    fasta.add_argument('--labels', metavar='TSV',
                       help='tab-separated labels: a header row "name<TAB>target1<TAB>...", then '
                            'one row per record: its name and one number per target. Without '
                            '--labels and --one-per-class the output has no label dataset')
    fasta.add_argument('--one-per-class', action='store_true',
                       help='one FASTA file per class: class index = position of the file on '
                            'the command line, e.g. neg.fa pos.fa -> 0, 1')
    fasta.add_argument('-L', '--length', type=int, metavar='L',
                       help='resize every sequence to L around its centre (cropped, or padded '
                            'with N); default: all sequences must have the same length')
    bed = commands.add_parser(
        'bed', formatter_class=formatter, epilog=examples,
        help='BED intervals (+ label columns) + an indexed genome FASTA -> HDF5',
        description='BED intervals resized to --length around their centre, fetched from a '
                    'genome FASTA by pyfaidx (which writes GENOME.fai) -> one-hot HDF5.')
    bed.add_argument('bed', metavar='BED',
                     help='tab-separated chrom, start, end (0-based, end excluded), optional '
                          'name, then label columns; a "#" header line may name the columns')
    bed.add_argument('-g', '--genome', required=True, metavar='FASTA',
                     help='genome FASTA, plain or bgzip-compressed, e.g. hg38.fa')
    bed.add_argument('-L', '--length', type=int, required=True, metavar='L',
                     help='window length: [c - L//2, c - L//2 + L) with c = (start + end) // 2')
    bed.add_argument('--label-columns', default='5-', metavar='COLS',
                     help='1-based BED columns holding the labels: 5- (all after the name), '
                          '5,7, 7-9 (e.g. 7 for the signal of a narrowPeak), or none '
                          '(default: %(default)s)')
    bed.add_argument('--off-end', choices=['pad', 'skip'], default='pad',
                     help='windows running off a chromosome end: pad with N, or skip the '
                          'interval; counted in the summary either way (default: %(default)s)')
    defaults = {fasta: 'the FASTA file names with --one-per-class, else 0,1,...',
                bed: '0,1,...: the class indices in the label column'}
    for command in (fasta, bed):
        _add_label_options(command, defaults[command])
        _add_output_options(command)
    vcf = vcf_command.add_parser(commands, formatter, prog)
    for command in (fasta, bed, vcf):
        _add_shared_options(command)
    return parser


def format_summary(summary, out_dir):
    """The summary as a few lines for the terminal."""
    lines = []
    for split, info in summary['files'].items():
        text = f'{os.path.join(out_dir, info["path"])}: {info["rows"]} rows'
        balance = info.get('labels', {})
        for key, values in balance.items():
            shown = ', '.join(f'{k}={v:g}' for k, v in list(values.items())[:8])
            more = f', ... ({len(values)} in all)' if len(values) > 8 else ''
            text += f'; {key}: {shown}{more}'
        lines.append(text)
    shape = '(n, 4, {0})' if summary['layout'] == '4,L' else '(n, 4, 1, {0})'
    lines.append(f'data: float32 {shape.format(summary["length"])}, rows A, C, G, T; IUPAC '
                 f'codes {summary["iupac"]}')
    task = summary['task']
    lines.append(f'labels: {task}, targets {summary["targets"]}'
                 + (f', classes {summary["classes"]}' if summary['classes'] else '')
                 if task else 'labels: none')
    for key in ('resized', 'padded', 'skipped'):
        counts = {k: v for k, v in summary.get(key, {}).items() if v}
        if counts:
            lines.append(f'{key}: ' + ', '.join(f'{v} ({k})' for k, v in counts.items()))
    lines.append(f'summary: {os.path.join(out_dir, "summary.json")}')
    return '\n'.join(lines)


def main(argv=None):
    """The command line: prepare, print the summary; returns the exit status (1 on bad input,
    with a message and no traceback unless ``--debug``)."""
    args = build_parser().parse_args(argv)
    options = {key: getattr(args, key) for key in OPTION_DEFAULTS
               if key != 'progress' and hasattr(args, key)}

    def work():
        if args.command == 'vcf':
            summary = vcf_command.run(args)
            print(vcf_command.format_summary(summary))
            return
        if args.command == 'fasta':
            summary = prepare_fasta(args.fastas, args.out, args.labels, args.one_per_class,
                                    args.class_names, args.length, args.task, **options)
        else:
            summary = prepare_bed(args.bed, args.genome, args.out, args.length,
                                  args.label_columns, args.task, args.class_names, args.off_end,
                                  **options)
        print(format_summary(summary, args.out))
    return run_cli(work, args.debug, interrupted='interrupted: no output was written')


if __name__ == '__main__':
    sys.exit(main())
