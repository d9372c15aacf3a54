"""Turn sequence files into training data: one-hot HDF5 files for ``H5pyBatchGenerator``.

    python -m prepare fasta seqs.fa --labels labels.tsv -o data
    python -m prepare fasta neg.fa pos.fa --one-per-class -o data
    python -m prepare bed peaks.bed --genome hg38.fa --length 1000 -o data \\
        --split chrom --valid-chroms chr8 --test-chroms chr9

Output: ``OUT/train.h5``, ``OUT/valid.h5``, ``OUT/test.h5`` (or ``OUT/all.h5`` with
``--no-split``) and ``OUT/summary.json``. Each HDF5 file holds

    data   float32, shape=(n, 4, L), or (n, 4, 1, L) with --layout 4,1,L; rows A, C, G, T
    label  int64 class indices, shape=(n,); or float32 0/1 or regression values, shape=(n,)
           for one target, (n, targets) for several; absent when the input has no labels
    name   str, shape=(n,): the FASTA record names, or the BED names (chrom:start-end if none)
    chrom, start, end   (bed only) the window encoded: 0-based, end excluded; where a window
           runs off the chromosome and was padded, start < 0 or end > the chromosome's length

and the attributes ``task``, ``targets``, ``classes`` (class tasks), ``alphabet``, ``layout``,
``length``, ``iupac`` and ``split``. Every output is written under a temporary name in OUT and
renamed at the end: a failure leaves no partial file.

Labels: ``fasta --labels TSV`` reads a tab-separated table with a header row naming the targets,
``name<TAB>CTCF<TAB>DNase``, then one row per sequence keyed by the first word of its FASTA
header (every record needs a row and every row a record); ``fasta --one-per-class a.fa b.fa``
labels each record with the position of its file (0, 1, ...) and stores the file names as the
classes. ``bed`` reads the labels from the BED's own columns, ``--label-columns 5-`` by default
(all after chrom, start, end, name), named by a '#' header line with one name per column.
Values are numbers: with ``--task auto`` 0/1 values are a class (one column, int64) or
multi-label targets (several, float32), anything else regression (float32).

Encoding: A, C, G, T set one row; U is read as T; letters are case-insensitive. N and the other
IUPAC codes (R Y S W K M B D H V) are 0.25 in all four rows (``iupac='uniform'``, the usual
convention: a model sees no base preference it was not given), or their weight spread over the
bases they stand for (``iupac='fractional'``: R = A/G is 0.5, 0.5). Any other character is an
error naming the record. :func:`decode` inverts the encoding.

Centre: an interval [start, end) (or a FASTA sequence, as [0, n)) is resized to the window
[c - L // 2, c - L // 2 + L) with c = (start + end) // 2; an interval of length L is unchanged.
Parts of a window outside the sequence are N (the BED default ``--off-end pad``, counted in the
summary) or, with ``--off-end skip``, the interval is left out (counted too).

Memory: FASTA records, BED lines and genome windows are read one at a time and written
``--chunk-rows`` at a time, so memory does not grow with the number of sequences, nor with the
genome's size; only a labels TSV is held whole (a name and one number per target per row).
The pieces: :mod:`onehot` (encoding), :mod:`seqfiles` (reading), :mod:`h5_writer` (writing).
"""
import argparse
import os
import sys

import numpy as np

from h5_writer import LAYOUTS, OPTION_DEFAULTS, TASKS, LabelFacts, SplitWriter, \
    Splitter, check_options
from onehot import decode, one_hot
from seqfiles import InputError, chrom_of, cut, open_genome, read_bed, read_fasta, \
    read_labels, unknown_chrom, window

__all__ = ['prepare_fasta', 'prepare_bed', 'one_hot', 'decode', 'InputError', 'main']


def _progress(iterable, total, desc, enabled):
    """A tqdm bar on stderr (``enabled=None``: only on a terminal)."""
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit=' seqs', mininterval=1,
                disable=None if enabled is None else not enabled, file=sys.stderr)


# -- the two commands -------------------------------------------------------------------------
def prepare_fasta(fastas, out_dir, labels=None, one_per_class=False, class_names=None,
                  length=None, task='auto', **options):
    """One-hot HDF5 files from FASTA files, labelled by a TSV or by file (one FASTA per class).

    Parameters
    ----------
    fastas: str or list of str
        FASTA files, plain or gzipped, multi-line records allowed; read record by record.
    out_dir: str
        Folder for ``train.h5``, ``valid.h5``, ``test.h5`` (or ``all.h5``) and ``summary.json``.
    labels: str or None
        TSV with a header row ``name<TAB>target...``; one row per sequence, keyed by the first
        word of its FASTA header. Every record needs a row and every row a record.
    one_per_class: bool
        Label each record with the index of its file in ``fastas`` (task ``class``).
    class_names: list of str or None
        Names of the classes; default the file names without extension (``one_per_class``),
        else '0', '1', ...
    length: int or None
        Resize every sequence to this length around its centre (cropped, or padded with N);
        None: all sequences must have the first one's length.
    task: {'auto', 'class', 'multilabel', 'regression'}
        How to store the labels (see :class:`h5_writer.LabelFacts`); ``auto``: 0/1 values are classes
        (one target) or multi-label (several), anything else regression.
    **options
        ``split`` ('random', 'chrom' or 'none'), ``valid``, ``test`` (fractions), ``seed``,
        ``valid_chroms``, ``test_chroms`` (for 'chrom': the record names must carry their
        interval, ``chr8:100-600``), ``layout`` ('4,L' or '4,1,L'), ``iupac`` ('uniform' or
        'fractional'), ``chunk_rows``, ``compression`` (None, 'lzf', 'gzip'), ``progress``
        (None: a bar on a terminal); defaults in ``OPTION_DEFAULTS``.

    Returns
    -------
    dict: the summary, also written to ``OUT/summary.json``
    """
    o = check_options(options)
    fastas = [os.fspath(fastas)] if isinstance(fastas, (str, os.PathLike)) else \
        [os.fspath(p) for p in fastas]
    if not fastas:
        raise InputError('no FASTA file given')
    labels = None if labels is None else os.fspath(labels)
    if labels is not None and one_per_class:
        raise InputError('give either a labels TSV or --one-per-class, not both')
    if length is not None and length < 1:
        raise InputError(f'--length must be a positive integer, got {length}')
    table, targets, classes = None, [], None
    if labels is not None:
        targets, table, values, lines = read_labels(labels)
        facts = LabelFacts()
        facts.update(values, lambda i: f'{labels}, line {lines[i]}')
        task, classes = facts.resolve(task, targets, class_names)
        seen = np.zeros(len(lines), bool)
    elif one_per_class:
        if task not in ('auto', 'class'):
            raise InputError(f'--one-per-class makes class labels, not --task {task}')
        if class_names is not None and len(class_names) != len(fastas):
            raise InputError(f'--class-names gives {len(class_names)} names for '
                             f'{len(fastas)} FASTA files')
        targets, task = ['class'], 'class'
        classes = list(class_names or [_stem(p) for p in fastas])
    else:
        _no_labels(task, class_names, 'give --labels TSV or --one-per-class')
        task = None
    splitter = Splitter(o)
    resized = 0
    with SplitWriter(out_dir, splitter, o, task, targets, classes, length=length) as out:
        for index, path in enumerate(fastas):
            records = 0
            for name, seq, line in _progress(read_fasta(path), None, os.path.basename(path),
                                             o['progress']):
                where = f'{path}, record {name!r} (line {line})'
                records += 1
                if not seq:
                    raise InputError(f'{where}: no sequence')
                if length is not None and len(seq) != length:
                    seq = cut(lambda a, b, s=seq: s[a:b], *window(0, len(seq), length),
                              len(seq))
                    resized += 1
                y = None
                if table is not None:
                    row = table.get(name)
                    if row is None:
                        raise InputError(f'{where}: no row for {name!r} in {labels}')
                    seen[row] = True
                    y = values[row]
                elif one_per_class:
                    y = [index]
                chrom = chrom_of(name, where) if o['split'] == 'chrom' else None
                out.add(splitter(chrom), seq, name, where, y)
            if not records:
                raise InputError(f"{path}: no FASTA records (lines starting with '>')")
        if table is not None and not seen.all():
            missing = np.flatnonzero(~seen)
            name = next(k for k, v in table.items() if v == missing[0])
            raise InputError(f'{labels}, line {lines[missing[0]]}: sequence {name!r} is in no '
                             f'FASTA file ({len(missing)} label rows have no sequence)')
        inputs = {'fasta': fastas, 'labels': labels}
        return out.commit({'command': 'fasta', 'inputs': inputs,
                           'resized': {'to --length (centre-cropped or N-padded)': resized},
                           'skipped': {}})


def _scan_bed(bed, sizes, label_columns, block_rows=4096):
    """The first pass over a BED file: every error before any writing, the facts that decide
    the label task, the count for the progress bar and the chromosomes seen; ``block_rows``
    lines at a time."""
    count, targets, facts, lines, block, chroms = 0, [], LabelFacts(), [], [], set()
    for row in read_bed(bed, sizes, label_columns):
        count += 1
        chroms.add(row['chrom'])
        targets = row.get('targets', targets)
        lines.append(row['line'])
        block.append(row['labels'])
        if len(block) == block_rows:
            facts.update(np.array(block, np.float64), lambda i: f'{bed}, line {lines[i]}')
            lines, block = [], []
    if not count:
        raise InputError(f'{bed}: no intervals')
    if block and targets:
        facts.update(np.array(block, np.float64), lambda i: f'{bed}, line {lines[i]}')
    return count, targets, facts, chroms


def _no_labels(task, class_names, why):
    """None, after checking that no option asks for labels the input does not have."""
    if task != 'auto' or class_names:
        asked = f'--task {task}' if task != 'auto' else '--class-names'
        raise InputError(f'{asked} needs labels, and there are none: {why}')
    return None


def _stem(path):
    """'data/pos.fa.gz' -> 'pos'"""
    name = os.path.basename(path)
    name = name[:-3] if name.endswith('.gz') else name
    return os.path.splitext(name)[0]


def prepare_bed(bed, genome, out_dir, length, label_columns='5-', task='auto', class_names=None,
                off_end='pad', **options):
    """One-hot HDF5 files from BED intervals resized around their centre in an indexed genome.

    Parameters
    ----------
    bed: str
        BED file (plain or gzipped): chrom, start, end (0-based, end excluded), an optional
        name, then the label columns; read twice (a check, then the writing), line by line.
    genome: str
        Genome FASTA, plain or bgzip-compressed; pyfaidx indexes it (``genome.fai``) and each
        window is fetched on its own, so the genome is never in memory.
    out_dir: str
        As for :func:`prepare_fasta`.
    length: int
        Window length L: [c - L // 2, c - L // 2 + L) with c = (start + end) // 2.
    label_columns: str
        1-based columns holding the labels: '5-' (default: all after the name), '5,7', '7-9'
        or 'none'. Their names come from a '#' header line, else 'column5', ...
    task, class_names:
        As for :func:`prepare_fasta`.
    off_end: {'pad', 'skip'}
        Windows that run off a chromosome end: padded with N, or left out; counted either way.
    **options
        As for :func:`prepare_fasta`; ``split='chrom'`` splits on the BED chromosome.

    Returns
    -------
    dict: the summary, also written to ``OUT/summary.json``
    """
    o = check_options(options)
    bed, genome = os.fspath(bed), os.fspath(genome)
    if not isinstance(length, int) or length < 1:
        raise InputError(f'--length must be a positive integer, got {length!r}')
    if off_end not in ('pad', 'skip'):
        raise InputError(f'--off-end must be pad or skip, got {off_end!r}')
    fasta, sizes = open_genome(genome)
    for chrom in o['valid_chroms'] + o['test_chroms']:
        if chrom not in sizes:
            raise unknown_chrom(chrom, sizes, '--valid-chroms/--test-chroms')
    count, targets, facts, chroms = _scan_bed(bed, sizes, label_columns)
    for split in ('valid', 'test'):
        if o[f'{split}_chroms'] and not chroms & set(o[f'{split}_chroms']):
            raise InputError(f'the {split} split would be empty: no interval of {bed} is on '
                             f'--{split}-chroms {",".join(o[f"{split}_chroms"])}')
    if targets:
        task, classes = facts.resolve(task, targets, class_names)
    else:
        task, classes = _no_labels(task, class_names, f'{bed} has no label columns '
                                                      f'(--label-columns {label_columns})'), None
    splitter = Splitter(o)
    off = 0
    with SplitWriter(out_dir, splitter, o, task, targets, classes, intervals=True,
                     length=length) as out:
        for row in _progress(read_bed(bed, sizes, label_columns), count,
                             os.path.basename(bed), o['progress']):
            chrom, size = row['chrom'], sizes[row['chrom']]
            left, right = window(row['start'], row['end'], length)
            if left < 0 or right > size:
                off += 1
                if off_end == 'skip':
                    continue
            seq = cut(lambda a, b: fasta[chrom][a:b].encode('ascii', 'replace'),
                      left, right, size)
            where = f'{bed}, line {row["line"]} ({chrom}:{row["start"]}-{row["end"]})'
            out.add(splitter(chrom), seq, row['name'], where, row['labels'] if task else None,
                    (chrom, left, right))
        return out.commit({'command': 'bed', 'inputs': {'bed': bed, 'genome': genome},
                           'intervals': count, 'off_end': off_end,
                           'padded': {'off a chromosome end': off if off_end == 'pad' else 0},
                           'skipped': {'off a chromosome end': off if off_end == 'skip' else 0}})


# -- command line -----------------------------------------------------------------------------
EXAMPLES = """\
examples:
  {prog} fasta seqs.fa.gz --labels labels.tsv -o data
  {prog} fasta neg.fa pos.fa --one-per-class -o data --layout 4,1,L
  {prog} bed peaks.bed -g hg38.fa -L 1000 -o data --split chrom \\
      --valid-chroms chr8 --test-chroms chr9
  {prog} bed regions.bed -g hg38.fa -L 1000 -o pred --no-split --label-columns none

output: OUT/train.h5, OUT/valid.h5, OUT/test.h5 (OUT/all.h5 with --no-split) and
OUT/summary.json. Datasets: data float32 (n, 4, L) or (n, 4, 1, L), rows A, C, G, T; N and
other IUPAC codes 0.25 in every row (--iupac fractional: spread over their bases); label
(int64 class indices, or float32 0/1 or regression values, (n,) or (n, targets)); name (str:
read it with f['name'].asstr()[:]); bed also: chrom, start, end of the window. Attributes: task, targets, classes, layout, length.
Read them with batch_generator.H5pyBatchGenerator('OUT/train.h5', batch_size, shuffle=True).
"""


def _names(text):
    """'chr8,chr9' -> ['chr8', 'chr9']"""
    return [part.strip() for part in text.split(',') if part.strip()]


def _add_label_options(parser):
    group = parser.add_argument_group('labels')
    group.add_argument('--task', choices=TASKS, default='auto',
                       help='class: one column of class indices 0..K-1 (label int64, (n,)); '
                            'multilabel: 0/1 per target (float32); regression: any numbers '
                            '(float32); auto: 0/1 values are class (one column) or multilabel '
                            '(several), anything else regression (default: %(default)s)')
    group.add_argument('--class-names', type=_names, metavar='NAMES',
                       help='comma-separated class names, e.g. neg,pos (default: the FASTA '
                            'file names with --one-per-class, else 0,1,...)')


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
                       help='--split random: seed of the draw (default: %(default)s)')
    group.add_argument('--valid-chroms', type=_names, action='extend', default=[],
                       metavar='CHROMS', help='--split chrom: chromosomes for valid.h5, e.g. '
                                              'chr8 or chr8,chr10 (repeatable)')
    group.add_argument('--test-chroms', type=_names, action='extend', default=[],
                       metavar='CHROMS', help='--split chrom: chromosomes for test.h5, e.g. chr9')
    group.add_argument('--layout', choices=LAYOUTS, default='4,L',
                       help='shape of a row of data: 4,L for Conv1d models, 4,1,L for Conv2d '
                            'with (1, k) kernels (default: %(default)s)')
    group.add_argument('--iupac', choices=['uniform', 'fractional'], default='uniform',
                       help='N and other IUPAC codes: uniform = 0.25 in all four rows; '
                            'fractional = spread over their bases, R = A/G -> 0.5, 0.5 '
                            '(default: %(default)s)')
    group.add_argument('--chunk-rows', type=int, default=256, metavar='N',
                       help='rows per HDF5 chunk and per write (default: %(default)s)')
    group.add_argument('--compression', choices=['none', 'lzf', 'gzip'], default='none',
                       help='compress data: lzf about 5x smaller, gzip about 15x, both slower '
                            'to write and to read (default: %(default)s)')
    group.add_argument('--debug', action='store_true', help='full tracebacks on errors')


def build_parser():
    prog = 'dlutil-prepare' if os.path.basename(sys.argv[0]) == 'dlutil-prepare' \
        else 'python -m prepare'
    formatter = argparse.RawDescriptionHelpFormatter
    examples = EXAMPLES.format(prog=prog)
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=formatter, epilog=examples,
        description='Turn sequence files into one-hot HDF5 training data for '
                    'H5pyBatchGenerator: FASTA + labels, or BED intervals + a genome, split '
                    f'into train/valid/test, streamed with bounded memory. "{prog} fasta '
                    f'--help" and "{prog} bed --help" list the options.')
    commands = parser.add_subparsers(dest='command', required=True, metavar='{fasta,bed}')
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
    for command in (fasta, bed):
        _add_label_options(command)
        _add_output_options(command)
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
    options = {key: getattr(args, key) for key in OPTION_DEFAULTS if key != 'progress'}
    try:
        if args.command == 'fasta':
            summary = prepare_fasta(args.fastas, args.out, args.labels, args.one_per_class,
                                    args.class_names, args.length, args.task, **options)
        else:
            summary = prepare_bed(args.bed, args.genome, args.out, args.length,
                                  args.label_columns, args.task, args.class_names, args.off_end,
                                  **options)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print('interrupted: no output was written', file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        known = isinstance(error, (ValueError, OSError))
        message = str(error) if known and str(error) else f'{type(error).__name__}: {error}'
        print(f'error: {message}\n(run with --debug for the traceback)', file=sys.stderr)
        return 1
    print(format_summary(summary, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
