"""Turn sequence files into training data: one-hot HDF5 files for ``H5pyBatchGenerator``.

    python -m dlutil.prepare fasta seqs.fa --labels labels.tsv -o data
    python -m dlutil.prepare fasta neg.fa pos.fa --one-per-class -o data
    python -m dlutil.prepare bed peaks.bed --genome hg38.fa --length 1000 -o data \\
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
error naming the record, unless ``iupac='zeros'``: every letter but A, C, G, T (U) an all-zero
column, as pysster encodes. :func:`decode` inverts the encoding; the policies are those of
:mod:`dlutil.sequences.onehot`.

Centre: an interval [start, end) (or a FASTA sequence, as [0, n)) is resized to the window
[c - L // 2, c - L // 2 + L) with c = (start + end) // 2; an interval of length L is unchanged.
Parts of a window outside the sequence are N (the BED default ``--off-end pad``, counted in the
summary) or, with ``--off-end skip``, the interval is left out (counted too).

Memory: FASTA records, BED lines and genome windows are read one at a time and written
``--chunk-rows`` at a time, so memory does not grow with the number of sequences, nor with the
genome's size; only a labels TSV is held whole (a name and one number per target per row).
The pieces: :mod:`dlutil.sequences.onehot` (encoding), :mod:`dlutil.sequences.readers`
(reading), :mod:`h5_writer` (writing).
"""
import os
import sys

import numpy as np

from dlutil.prepare.h5_writer import SplitWriter
from dlutil.prepare.labels import LabelFacts
from dlutil.prepare.options import Splitter, check_options
from dlutil.sequences.onehot import decode, one_hot
from dlutil.sequences.intervals import chrom_of, cut, open_genome, read_bed, unknown_chrom, window
from dlutil.sequences.readers import InputError, read_fasta, read_labels

__all__ = ['prepare_fasta', 'prepare_bed', 'one_hot', 'decode', 'InputError']


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
        How to store the labels (see :class:`labels.LabelFacts`); ``auto``: 0/1 values are classes
        (one target) or multi-label (several), anything else regression.
    **options
        ``split`` ('random', 'chrom' or 'none'), ``valid``, ``test`` (fractions), ``seed``,
        ``valid_chroms``, ``test_chroms`` (for 'chrom': the record names must carry their
        interval, ``chr8:100-600``), ``layout`` ('4,L' or '4,1,L'), ``iupac`` ('uniform',
        'fractional' or 'zeros'), ``chunk_rows``, ``compression`` (None, 'lzf', 'gzip'),
        ``progress`` (None: a bar on a terminal); defaults in ``OPTION_DEFAULTS``.

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
            for record in _progress(read_fasta(path), None, os.path.basename(path),
                                    o['progress']):
                name, seq = record.name, record.sequence
                where = f'{path}, record {name!r} (line {record.line})'
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
