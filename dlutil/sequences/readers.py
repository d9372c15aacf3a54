"""Reading sequence files as streams: FASTA (plain or gzipped; the one FASTA reader of the tool)
and a labels TSV; every error names the file and the line. BED intervals and an indexed genome:
:mod:`intervals`.
"""
import gzip
import io
import math
import zlib
from typing import NamedTuple

import numpy as np
from dlutil.errors import InputError  # noqa: F401 (re-exported)


GZIP_MAGIC = b'\x1f\x8b'


def is_gzip(path):
    """Whether ``path`` is gzip-compressed, told by its first two bytes (whatever its name)."""
    with open(path, 'rb') as handle:
        return handle.read(2) == GZIP_MAGIC


def open_file(path, text=False):
    """A handle on a plain or gzip-compressed file (told apart by :func:`is_gzip`); text mode
    decodes UTF-8, replacing what does not decode."""
    handle = gzip.open(path, 'rb') if is_gzip(path) else open(path, 'rb')
    return io.TextIOWrapper(handle, encoding='utf-8', errors='replace') if text else handle


def numbered_lines(path, text=True):
    """``(line number, line)`` of a plain or gzipped file; read errors name the file."""
    try:
        with open_file(path, text) as handle:
            yield from enumerate(handle, 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise InputError(f'{path}: cannot read it ({error})') from None


class FastaRecord(NamedTuple):
    """One FASTA record: ``header`` (the header line without ``>``, str), ``lines`` (its
    sequence lines, bytes, whitespace removed, case kept) and ``line`` (the header's line
    number, from 1)."""
    header: str
    lines: list
    line: int

    @property
    def name(self):
        """The header's first word: the record's name."""
        return self.header.split()[0]

    @property
    def sequence(self):
        """The sequence lines joined, bytes as in the file."""
        return b''.join(self.lines)


def read_fasta(path):
    """Yield the records of a FASTA file one at a time, as :class:`FastaRecord`.

    The file is plain or gzipped (told by content, whatever its name); records may span many
    lines; blank lines and ``;`` comment lines are skipped; whitespace inside a line is dropped.
    Memory holds one record at a time.

    Raises
    ------
    InputError (a ValueError) naming the file and the line: a sequence line before the first
    header, a header without a name, a record without a sequence, a file without records
    """
    header, lines, start = None, [], 0
    for lineno, line in numbered_lines(path, text=False):
        line = line.strip()
        if not line or line[:1] == b';':
            continue
        if line[:1] == b'>':
            if header is not None:
                yield _record(path, header, lines, start)
            header = line[1:].strip().decode('utf-8', 'replace')
            if not header:
                raise InputError(f'{path}, line {lineno}: a FASTA header without a name')
            lines, start = [], lineno
        elif header is None:
            raise InputError(f'{path}, line {lineno}: sequence before the first ">" header; is '
                             f'this a FASTA file? (got {line[:40].decode("utf-8", "replace")!r})')
        else:
            lines.append(b''.join(line.split()) if b' ' in line or b'\t' in line else line)
    if header is None:
        raise InputError(f'{path}: no FASTA records (no line starts with ">")')
    yield _record(path, header, lines, start)


def _record(path, header, lines, start):
    if not lines:
        raise InputError(f'{path}, line {start}: record >{header} has no sequence')
    return FastaRecord(header, lines, start)


def parse_numbers(texts, where):
    """The label fields of one line as floats; ``where(j)`` names field j for errors."""
    try:
        values = [float(text) for text in texts]
        if all(map(math.isfinite, values)):
            return values
    except ValueError:
        pass
    for j, text in enumerate(texts):  # the slow way, only to name the culprit
        try:
            ok = math.isfinite(float(text))
        except ValueError:
            raise InputError(f'{where(j)}: {text.strip()!r} is not a number') from None
        if not ok:
            raise InputError(f'{where(j)}: {text.strip()!r}; labels must be finite numbers')


def read_labels(path):
    """A labels TSV: a header row ``name<TAB>target1<TAB>...``, then one row per sequence.

    Returns
    -------
    (targets, rows, values, lines): target names; {sequence name: row}; float64 array
        shape=(n, targets); the line number of each row
    """
    header, rows, values, lines = None, {}, [], []
    for lineno, line in numbered_lines(path):
        fields = line.rstrip('\r\n').split('\t')
        if not line.strip():
            continue
        if header is None:
            if len(fields) < 2:
                raise InputError(f'{path}, line {lineno}: the header row must name the key '
                                 f'column and the targets, tab-separated, like '
                                 f'"name<TAB>CTCF<TAB>DNase"; got {line.strip()!r}')
            header = [f.strip() for f in fields]
            continue
        if len(fields) != len(header):
            raise InputError(f'{path}, line {lineno}: {len(fields)} tab-separated fields but '
                             f'the header has {len(header)}')
        key = fields[0].strip()
        if key in rows:
            raise InputError(f'{path}, line {lineno}: sequence {key!r} is already labelled on '
                             f'line {lines[rows[key]]}')
        rows[key] = len(lines)
        lines.append(lineno)
        values.append(parse_numbers(fields[1:], lambda j: f'{path}, line {lineno}, column {j + 2} '
                                                     f'({header[j + 1]})'))
    if not rows:
        raise InputError(f'{path}: no labels; expected a header row, then one row per '
                         f'sequence: name<TAB>value...')
    return header[1:], rows, np.array(values, np.float64), lines
