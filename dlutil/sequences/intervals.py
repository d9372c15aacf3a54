"""BED intervals and an indexed genome: reading and checking them, the window around an
interval's centre, and cutting it from a chromosome (N where it runs off an end).
"""
import os
import re

from dlutil.sequences.readers import GZIP_MAGIC, InputError, numbered_lines, parse_numbers

# a FASTA name that carries its interval, as bedtools getfasta writes it (also name::chr:s-e(+))
INTERVAL_NAME = re.compile(r'^(?:.*::)?([^:\s]+):(\d+)-(\d+)(?:\([+.-]\))?$')


def window(start, end, length):
    """The window of ``length`` around the centre of [start, end), 0-based, end excluded.

    With c = (start + end) // 2 it is [c - length // 2, c - length // 2 + length): an interval
    of ``length`` letters is its own window; an odd extra letter goes to the right.
    """
    left = (start + end) // 2 - length // 2
    return left, left + length


def cut(fetch, left, right, size):
    """Letters [left, right) of a sequence of ``size`` letters, N where the window runs off it.

    ``fetch(a, b)`` returns the bytes [a, b) of the sequence, 0 <= a < b <= size.
    """
    low, high = max(left, 0), min(right, size)
    inside = fetch(low, high) if low < high else b''
    return b'N' * max(0, min(right, 0) - left) + inside + b'N' * max(0, right - max(left, size))


def _columns(spec, n_fields, where):
    """0-based label columns of a BED line from a spec like '5-', '5,7' or '7-9' (1-based)."""
    if spec in (None, '', 'none'):
        return []
    picked = []
    for part in spec.split(','):
        low, dash, high = part.partition('-')
        try:
            low = int(low)
            high = (int(high) if high else n_fields) if dash else low
        except ValueError:
            raise InputError(f'--label-columns must be 1-based columns like 5-, 5,7 or 7-9, '
                             f'got {spec!r}') from None
        if low < 4 or high > n_fields:
            raise InputError(f'{where}: --label-columns {spec} asks for columns {low}-{high} '
                             f'but label columns come after chrom, start, end (column 4 on) '
                             f'and the line has {n_fields}')
        picked.extend(range(low - 1, high))
    return picked


def unknown_chrom(chrom, sizes, where):
    """The error for a chromosome the genome lacks, with a "did you mean" ('1' -> 'chr1')."""
    lower = {name.lower(): name for name in sizes}
    close = [c for c in ('chr' + chrom, chrom[3:]) if c in sizes] or \
        [lower[c] for c in (chrom.lower(),) if c in lower]
    hint = f'; did you mean {close[0]}?' if close else ''
    shown = ', '.join(list(sizes)[:5]) + (', ...' if len(sizes) > 5 else '')
    return InputError(f'{where}: chromosome {chrom!r} is not in the genome ({len(sizes)} '
                      f'sequences: {shown}){hint}')


def read_bed(path, sizes, label_columns='5-'):
    """Yield the intervals of a BED file, checked against the genome's ``sizes``.

    Lines starting with '#', 'track' or 'browser' are skipped; the last '#' line before the first
    interval names the columns when it has as many tab-separated fields as the intervals.

    Yields
    ------
    dict with keys ``line, chrom, start, end, name, labels`` (list of floats) and, for the first
    interval, ``targets``: the names of the label columns
    """
    header, fields_count, picked, targets, first = None, None, None, None, True
    for lineno, line in numbered_lines(path):
        if not line.strip() or line.startswith(('track', 'browser')):
            continue
        if line.startswith('#'):
            header = line[1:].rstrip('\r\n').split('\t')
            continue
        fields = line.rstrip('\r\n').split('\t')
        where = f'{path}, line {lineno}'
        if fields_count is None:
            if len(fields) < 3:
                raise InputError(f'{where}: a BED line needs chrom, start and end, '
                                 f'tab-separated; got {line.strip()!r}')
            fields_count = len(fields)
            picked = _columns(label_columns, fields_count, where)
            names = header if header and len(header) == fields_count else None
            targets = [names[j].strip() if names else f'column{j + 1}' for j in picked]
        elif len(fields) != fields_count:
            raise InputError(f'{where}: {len(fields)} fields but the first interval has '
                             f'{fields_count}; every line must have the same columns')
        chrom = fields[0]
        try:
            start, end = int(fields[1]), int(fields[2])
        except ValueError:
            raise InputError(f'{where}: start and end must be integers, got {fields[1]!r} '
                             f'and {fields[2]!r}') from None
        if not 0 <= start < end:
            raise InputError(f'{where}: interval {chrom}:{start}-{end} must have '
                             f'0 <= start < end')
        if chrom not in sizes:
            raise unknown_chrom(chrom, sizes, where)
        name = fields[3] if fields_count > 3 and 3 not in picked and fields[3] != '.' else None
        row = {'line': lineno, 'chrom': chrom, 'start': start, 'end': end,
               'name': name or f'{chrom}:{start}-{end}',
               'labels': parse_numbers([fields[j] for j in picked], lambda i: f'{where}, column '
                                  f'{picked[i] + 1} ({targets[i]})')}
        if first:
            row['targets'], first = targets, False
        yield row


def open_genome(path):
    """A pyfaidx ``Fasta`` (it writes ``PATH.fai`` on first use) and {chrom: length}."""
    try:
        import pyfaidx
    except ImportError:
        raise InputError('the bed command reads the genome with pyfaidx: pip install pyfaidx') \
            from None
    if not os.path.isfile(path):
        raise InputError(f'--genome {path}: no such file')
    with open(path, 'rb') as handle:
        head = handle.read(14)
    if head[:2] == GZIP_MAGIC and head[12:14] != b'BC':  # gzip, but not blocked (bgzip)
        raise InputError(f'--genome {path}: gzip-compressed; indexed access needs a plain '
                         f'FASTA (gunzip it) or a bgzip-compressed one')
    try:
        genome = pyfaidx.Fasta(path, as_raw=True)
    except ImportError as error:  # bgzip needs Biopython
        raise InputError(f'--genome {path}: {error}; or gunzip it') from None
    except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat,
            ValueError) as error:
        raise InputError(f'--genome {path}: cannot index it ({error})') from None
    sizes = {name: len(record) for name, record in genome.items()}
    if not sizes:
        raise InputError(f'--genome {path}: no sequences')
    return genome, sizes


def chrom_of(name, where):
    """The chromosome of a FASTA record named by its interval: 'chr8:100-600' -> 'chr8'."""
    match = INTERVAL_NAME.match(name)
    if not match:
        raise InputError(f'{where}: --split chrom needs record names that carry their '
                         f'interval, like chr8:1000-2000 (as bedtools getfasta writes them); '
                         f'use --split random for other names')
    return match.group(1)
