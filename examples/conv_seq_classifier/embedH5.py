"""One-hot encode DNA sequences and their labels into an HDF5 file for ``H5pyBatchGenerator``.

    paste - - -d' ' < raw_data/train.fa > data/tmp.tsv
    python3 embedH5.py data/tmp.tsv raw_data/train.target data/train.h5

Input
-----
SEQ_TSV: one record per line, ``>name SEQUENCE`` (a two-line-per-record FASTA joined by
    ``paste - - -d' '``). The sequence is the last whitespace-separated field, so a header with a
    description (``>chr1:100-201 peak 7 ACGT...``) works too. All sequences must have the same
    length. Letters are read case-insensitively and encoded by the tool's one encoder
    (:func:`dlutil.sequences.onehot.one_hot`, the convention of ``python -m dlutil.prepare``):
    A, C, G, T set one row; N and the other IUPAC codes set 0.25 in all four rows; U is read as
    T; any other character is an error naming the line.
TARGET: one numeric label per line, in the same order as the sequences.

Output
------
An HDF5 file with the datasets

    data   float32, shape=(n, 4, 1, length)  one-hot, rows in A, C, G, T order
    label  shape=(n,)                         int64 when every label is a whole number, else float32
    name   str, shape=(n,)                    the record names, without '>'

``data`` and ``label`` are chunked by ``--chunk-rows`` rows, so a streaming reader fetches
whole chunks. The file is written under a temporary name beside OUT and renamed at the end:
a failed run leaves no half-written OUT.
"""
import argparse
import os
import sys
import tempfile

import h5py
import numpy as np

from dlutil.sequences.onehot import BadLetter, decode, one_hot  # noqa: F401 (decode: tests)

CHUNK_ROWS = 256


class InputError(ValueError):
    """The input files are malformed; the message names the file and line."""


def parse_record(line, path, lineno):
    """``'>name SEQUENCE'`` → ``(name, sequence)``; errors name ``path`` and ``lineno``."""
    fields = line.split()
    if len(fields) < 2 or not fields[0].startswith('>'):
        shown = line.strip()
        shown = shown if len(shown) <= 60 else shown[:57] + '...'
        raise InputError(f"{path}, line {lineno}: expected '>name SEQUENCE' (a 2-line-per-record "
                         f"FASTA joined by paste - - -d' '), got {shown!r}")
    name = ' '.join(fields[:-1])[1:]
    return name, fields[-1]


def encode(sequence, path='<sequence>', lineno=0):
    """One-hot encode one sequence with the tool's encoder.

    Returns
    -------
    numpy.ndarray, float32, shape=(4, 1, length), rows A, C, G, T
    """
    try:
        return one_hot(sequence)[:, None, :]
    except BadLetter as error:
        raise InputError(f'{path}, line {lineno}: {error}') from None


def parse_label(text, path, lineno):
    try:
        value = float(text)
    except ValueError:
        raise InputError(f'{path}, line {lineno}: expected one numeric label, '
                         f'got {text.strip()!r}') from None
    if not np.isfinite(value):
        raise InputError(f'{path}, line {lineno}: label is {text.strip()!r}; labels must be finite')
    return value


def read_targets(path):
    """The labels of ``path``, one per line; blank lines at the end are ignored."""
    with open(path) as handle:
        try:
            lines = handle.read().splitlines()
        except UnicodeDecodeError as error:
            raise InputError(f'{path}: not a text file ({error.reason} at byte '
                             f'{error.start})') from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [parse_label(line, path, lineno) for lineno, line in enumerate(lines, 1)]


def records(path):
    """``(lineno, name, sequence)`` for every non-blank line of ``path``."""
    lineno = 0
    with open(path) as handle:
        try:
            for lineno, line in enumerate(handle, 1):
                if line.strip():
                    yield (lineno,) + parse_record(line, path, lineno)
        except UnicodeDecodeError as error:
            raise InputError(f'{path}, near line {lineno + 1}: not a text file '
                             f'({error.reason})') from None


def embed(seq_path, target_path, out_path, chunk_rows=CHUNK_ROWS):
    """Write ``out_path`` (see the module docstring) from a ``>name SEQUENCE`` file and targets.

    Returns
    -------
    (n, length): the number of sequences and their length
    """
    if chunk_rows < 1:
        raise InputError(f'--chunk-rows must be at least 1, got {chunk_rows}')
    labels = read_targets(target_path)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    # a hidden temporary name: a glob like 'train.h5*' never picks up a half-written file
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(out_path)}.',
                               suffix='.tmp')
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give OUT a normal file's mode
    try:
        with h5py.File(tmp, 'w') as out:
            n, length = _write(out, seq_path, target_path, labels, chunk_rows)
        os.replace(tmp, out_path)
    except BaseException:
        os.remove(tmp)
        raise
    return n, length


def _write(out, seq_path, target_path, labels, chunk_rows):
    length = data = None
    names, buffer = [], []
    n = 0
    for lineno, name, sequence in records(seq_path):
        if length is None:
            length = len(sequence)
            data = out.create_dataset('data', shape=(0, 4, 1, length),
                                      maxshape=(None, 4, 1, length), dtype='float32',
                                      chunks=(chunk_rows, 4, 1, length))
        elif len(sequence) != length:
            raise InputError(f'{seq_path}, line {lineno}: sequence {name!r} has length '
                             f'{len(sequence)} but the first sequence has length {length}; '
                             f'all sequences must have the same length')
        if n + len(buffer) >= len(labels):
            raise InputError(f'{seq_path} has more sequences than {target_path} has labels '
                             f'({len(labels)}): line {lineno} has no label')
        buffer.append(encode(sequence, seq_path, lineno))
        names.append(name)
        if len(buffer) == chunk_rows:
            n = _flush(data, buffer, n)
    if length is None:
        raise InputError(f'{seq_path}: no sequences')
    n = _flush(data, buffer, n)
    if n != len(labels):
        raise InputError(f'{seq_path} has {n} sequences but {target_path} has {len(labels)} '
                         f'labels; they must match one to one')
    values = np.asarray(labels)
    whole = np.all(values == np.round(values))
    out.create_dataset('label', data=values.astype(np.int64 if whole else np.float32),
                       chunks=(min(chunk_rows, n),))
    out.create_dataset('name', data=names, dtype=h5py.string_dtype())
    return n, length


def _flush(data, buffer, n):
    if buffer:
        data.resize(n + len(buffer), axis=0)
        data[n:n + len(buffer)] = np.stack(buffer)
        n += len(buffer)
        buffer.clear()
    return n


def build_parser():
    parser = argparse.ArgumentParser(
        prog='embedH5.py', description='One-hot encode ">name SEQUENCE" lines and their labels '
                                       'into an HDF5 file (datasets data, label, name).')
    parser.add_argument('seq_tsv', metavar='SEQ_TSV',
                        help="'>name SEQUENCE' per line: paste - - -d' ' < file.fa")
    parser.add_argument('target', metavar='TARGET', help='one numeric label per line')
    parser.add_argument('out', metavar='OUT', help='the HDF5 file to write')
    parser.add_argument('--chunk-rows', type=int, default=CHUNK_ROWS, metavar='N',
                        help='rows per HDF5 chunk (default: %(default)s)')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        n, length = embed(args.seq_tsv, args.target, args.out, args.chunk_rows)
    except InputError as error:
        print(f'embedH5.py: error: {error}', file=sys.stderr)
        return 1
    except OSError as error:  # missing or unreadable input, unwritable output
        where = f'{error.filename}: ' if error.filename else ''
        print(f'embedH5.py: error: {where}{error.strerror or error}', file=sys.stderr)
        return 1
    print(f'{args.out}: {n} sequences of length {length}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
