"""Why htslib could not read a VCF/BCF, in words: the file, the record and what was expected.

cyvcf2 reports a damaged file as a bare ``Exception`` (``cannot parse VCF header``, ``error parsing
variant with htslib::bcf_read …``) naming neither the file nor the record. These functions look
at the file again, only once reading has failed, and say what is wrong:

- :func:`check_complete`: a bgzipped VCF or a BCF must end with BGZF's empty end-of-file block;
  htslib only warns when it is absent and reads what is there, so a file cut short at a block
  boundary would lose its last variants without an error;
- :func:`header_problem`: an empty file, a first line that is not ``##fileformat=VCF…``, no
  ``#CHROM`` line, a sample named twice, damaged compressed data;
- :func:`record_problem`: the record after the last one read, by line number: cut off mid-line,
  the wrong number of columns, a POS or GT that is not one, damaged compressed data;
- :func:`quiet_htslib`: htslib's own stderr lines off while a file is read, as these say it.
"""
import contextlib
import gzip
import re
import zlib

from dlutil import extras

#: BGZF's end-of-file marker: an empty block, the last 28 bytes of every complete bgzip/BCF file
BGZF_EOF = bytes.fromhex('1f8b08040000000000ff0600424302001b0003000000000000000000')
_GT = re.compile(rb'^(\.|\d+)([|/](\.|\d+))*$')
_DAMAGED = (EOFError, OSError, zlib.error)  # gzip.BadGzipFile is an OSError


def _magic(path):
    with open(path, 'rb') as handle:
        return handle.read(18)


def is_bgzf(head):
    """Whether a file's first bytes open a BGZF block (gzip with the ``BC`` extra field)."""
    return head[:4] == b'\x1f\x8b\x08\x04' and head[12:14] == b'BC'


def is_bcf(path):
    """Whether the file holds BCF (binary), compressed or not, rather than VCF text."""
    head = _magic(path)
    if head[:2] == b'\x1f\x8b':
        try:
            with gzip.open(path, 'rb') as handle:
                head = handle.read(3)
        except _DAMAGED:
            return path.endswith('.bcf')
    return head[:3] == b'BCF'


def check_complete(path):
    """The reason a bgzipped file is cut short (no end-of-file block), or None.

    Plain text and plain gzip are not checked: they carry no such marker.
    """
    if not is_bgzf(_magic(path)):
        return None
    with open(path, 'rb') as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(size - len(BGZF_EOF), 0))
        if handle.read() == BGZF_EOF:
            return None
    return ('truncated: a bgzipped VCF or a BCF ends with the BGZF end-of-file block, and this '
            'file does not (cut short by an interrupted download or copy?); fetch it or compress '
            'it again (bgzip, bcftools view -Oz)')


def _lines(path):
    """The file's lines as bytes, decompressed when it is gzipped (bgzip included)."""
    opener = gzip.open if _magic(path)[:2] == b'\x1f\x8b' else open
    with opener(path, 'rb') as handle:
        yield from handle


def _damaged(error, where):
    return (f'the compressed data is damaged {where} ({type(error).__name__}: {error}); '
            f'fetch the file or compress it again')


def header_problem(path):
    """What is wrong with a VCF that htslib refused to open, or None if nothing is found.

    Reads the whole file when the header looks right: htslib reads ahead, so damaged compressed
    data past the header can make it refuse the header.
    """
    if is_bcf(path):
        return None
    number, chrom_line = 0, None
    lines = _lines(path)
    try:
        for number, line in enumerate(lines, 1):
            if number == 1 and not line.startswith(b'##fileformat=VCF'):
                return (f'line 1 is {line[:40].decode("utf-8", "replace").rstrip()!r}; a VCF '
                        f'starts with ##fileformat=VCFv4.x')
            if not line.startswith(b'#'):
                break
            if line.startswith(b'#CHROM'):
                chrom_line = line
        if number == 0:
            return 'the file is empty'
        if chrom_line is None:
            return 'no #CHROM header line (#CHROM POS ID REF ALT QUAL FILTER INFO FORMAT ' \
                   'samples…)'
        samples = chrom_line.rstrip(b'\r\n').split(b'\t')[9:]
        if len(set(samples)) < len(samples):
            twice = next(s for s in samples if samples.count(s) > 1)
            return f'the #CHROM line names sample {twice.decode("utf-8", "replace")} twice'
        for number, _ in enumerate(lines, number + 1):  # the rest: is the compressed data whole?
            pass
    except _DAMAGED as error:
        return _damaged(error, f'near line {number}')
    finally:
        lines.close()
    return None


def record_problem(path, index, samples):
    """What is wrong with record ``index`` (1-based, header lines not counted) of a text VCF.

    Parameters
    ----------
    path: str
    index: int
        The record htslib failed on: one more than the records read.
    samples: list of str
        The header's samples, in the file's column order.

    Returns
    -------
    (line, record, problem): the record's line number and its ``CHROM:POS`` (None when the file
    is a BCF or the record was not found), and the problem in words (None when nothing is
    found).
    """
    if is_bcf(path):
        return None, None, None
    number, records = 0, 0
    try:
        for number, line in enumerate(_lines(path), 1):
            if line.startswith(b'#'):
                continue
            records += 1
            if records == index:
                fields = line.split(b'\t', 2)[:2]
                record = b':'.join(fields).decode('utf-8', 'replace') if len(fields) == 2 \
                    else None
                return number, record, _line_problem(line, samples)
    except _DAMAGED as error:
        return number + 1, None, _damaged(error, f'near line {number}')
    return None, None, None


def _line_problem(line, samples):
    if not line.endswith(b'\n'):
        return 'the line is cut off: the file is truncated'
    fields = line.rstrip(b'\r\n').split(b'\t')
    expected = 9 + len(samples) if samples else 8
    text = [f.decode('utf-8', 'replace') for f in fields]
    if len(fields) < expected:
        what = f'8 fixed, FORMAT and {len(samples)} samples' if samples else '8 fixed'
        return f'{len(fields)} tab-separated columns where {expected} were expected ({what})'
    if not fields[1].isdigit():
        return f'POS {text[1]!r} is not a position (a whole number)'
    if samples:
        keys = fields[8].split(b':')
        if b'GT' in keys:
            at = keys.index(b'GT')
            for name, value in zip(samples, fields[9:]):
                parts = value.split(b':')
                call = parts[at] if at < len(parts) else b'.'
                if not _GT.match(call):
                    return (f'sample {name} has GT {call.decode("utf-8", "replace")!r}; '
                            f'expected allele numbers or ., e.g. 0|1 or .|.')
    return None


__all__ = ['BGZF_EOF', 'is_bgzf', 'is_bcf', 'check_complete', 'header_problem', 'record_problem',
           'quiet_htslib']


@contextlib.contextmanager
def quiet_htslib(path, extra='genotypes'):
    """htslib's own messages off (cyvcf2's copy of htslib) while ``path`` is read: what it
    would print on stderr, a read error's file, record and cause, is in our one-line error.
    Without cyvcf2, a :class:`~dlutil.extras.MissingExtraError` naming ``extra``."""
    cyvcf2 = extras.require('cyvcf2', f'reading the VCF/BCF {path}', extra=extra).cyvcf2
    set_level = getattr(cyvcf2, 'set_htslib_log_level', lambda level: None)
    set_level(0)
    try:
        yield
    finally:
        set_level(3)  # htslib's default, HTS_LOG_WARNING
