"""The annotated VCF of ``--vep``: the input's records with the scores in INFO fields.

    vcf = AnnotatedVcf(tmp_path, reader.header, fields, source='def.py, trials/t3/best.pt')
    vcf.write(records, scored)      # records in file order; scored: {(record, allele): values}
    vcf.close()                     # then vcf.index(tmp_tbi) when vcf.sorted

One INFO field per score and task, ``<prefix>_<score>_<task>`` (letters other than
``[0-9A-Za-z_.]`` in a task name become ``_``), declared in the header as ``Number=A,Type=Float``
with a description naming the score, the task and the model; a value per ALT allele, ``.`` for an
allele that was not scored (symbolic, REF mismatch, chromosome not in the genome) or whose score
is undefined (NaN). A record without any scored allele is copied unchanged. Values are written
with 9 significant digits, which read back (float32, as VCF keeps them) to exactly the float32
of the HDF5 file's value.

The copy holds the 8 site columns (CHROM … INFO), not the samples: the scores are per allele, and
copying the genotypes of thousands of samples would multiply the size and the time
(``bcftools annotate -a OUT.vcf.gz -c INFO IN.vcf.gz`` puts the fields onto the full file).
An INFO field of the input with one of these IDs (a VCF annotated before) is replaced.

The file is bgzipped (BGZF, :class:`BgzfWriter`) as it is written, a batch at a time;
:meth:`index` writes its tabix index with pysam, when the records are sorted (a VCF out of
order is written without one, with a warning).
"""
import re
import struct
import zlib

from dlutil.extras import require
from dlutil.genotypes.vcf_diagnosis import BGZF_EOF

__all__ = ['AnnotatedVcf', 'BgzfWriter', 'info_ids']

class BgzfWriter:
    """A BGZF file (blocked gzip, what tabix indexes) written through a Python file, so that
    a failing write raises the ``OSError`` of the disk (its errno and file name), as every
    other output of the tool does. Each block holds at most 65,280 bytes of text, deflated;
    the SAM/BAM specification (4.1) gives the block layout."""

    BLOCK = 0xff00

    def __init__(self, path, level=6):
        self.handle, self.level, self.buffer = open(path, 'wb'), level, bytearray()

    def write(self, data):
        self.buffer += data
        while len(self.buffer) >= self.BLOCK:
            self._block(bytes(self.buffer[:self.BLOCK]))
            del self.buffer[:self.BLOCK]

    def _block(self, data):
        deflate = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        body = deflate.compress(data) + deflate.flush()
        header = struct.pack('<4BI2BH2BHH', 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2,
                             len(body) + 25)  # BSIZE: the block's length - 1
        self.handle.write(header + body + struct.pack('<2I', zlib.crc32(data), len(data)))

    def close(self):
        if self.handle.closed:
            return
        try:
            if self.buffer:
                self._block(bytes(self.buffer))
            self.handle.write(BGZF_EOF)  # the empty block that ends every BGZF file
        finally:
            self.buffer = bytearray()
            self.handle.close()


_ID_LETTERS = re.compile(r'[^0-9A-Za-z_.]')


def info_ids(prefix, scores, labels):
    """``{(score, label): INFO ID}`` for every score and task label, unique and valid."""
    ids, used = {}, set()
    for score in scores:
        for label in labels:
            base = _ID_LETTERS.sub('_', f'{prefix}_{score}_{label}')
            if not re.match('[A-Za-z_]', base):
                base = '_' + base
            name, k = base, 2
            while name in used:
                name, k = f'{base}_{k}', k + 1
            used.add(name)
            ids[score, label] = name
    return ids


def _info_line(name, score, label, source):
    text = (f'{score} of {label}, alternative versus reference allele, by --vep of {source}'
            ).replace('"', "'")
    return f'##INFO=<ID={name},Number=A,Type=Float,Description="{text}">\n'


class AnnotatedVcf:
    """A bgzipped VCF at ``path``: ``header`` (the input's, its #CHROM line of 8 columns) with
    the fields of ``ids`` (from :func:`info_ids`, in the order of the values) declared."""

    def __init__(self, path, header, ids, source):
        self.path, self.names = path, list(ids.values())
        ours = set(self.names)
        kept, replaced = [], set()
        for line in header.splitlines(keepends=True):
            match = re.match(r'##INFO=<ID=([^,>]+)', line)
            if match and match.group(1) in ours:
                replaced.add(match.group(1))
            elif not line.startswith('#CHROM'):
                kept.append(line)
        self.replaced = replaced
        kept += [_info_line(name, score, label, source) for (score, label), name in ids.items()]
        kept.append('#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n')
        self.file = BgzfWriter(path)
        self.file.write(''.join(kept).encode())
        self.sorted, self._last, self._seen = True, (None, 0), set()

    def write(self, records, scored):
        """Append ``records`` (:class:`dlutil.variants.vcf.Record`, in file order) with the
        values ``scored[record number, allele]`` (a list of floats, one per field) where there
        are any."""
        lines = []
        for record in records:
            columns = record.line.split('\t')
            self._order(columns[0], int(columns[1]))
            values = [scored.pop((record.number, k), None) for k in range(len(record.sites))]
            if self.replaced:
                columns[7] = ';'.join(item for item in columns[7].split(';')
                                      if item.partition('=')[0] not in self.replaced) or '.'
            if any(v is not None for v in values):
                texts = [['.'] * len(self.names) if v is None else
                         ['.' if x != x else '%.9g' % x for x in v] for v in values]
                fields = [f'{name}=' + ','.join(text[j] for text in texts)
                          for j, name in enumerate(self.names)]
                columns[7] = ';'.join(([] if columns[7] == '.' else [columns[7]]) + fields)
            lines.append('\t'.join(columns) + '\n')
        self.file.write(''.join(lines).encode())

    def _order(self, chrom, pos):
        last_chrom, last_pos = self._last
        if chrom != last_chrom:
            if chrom in self._seen:
                self.sorted = False
            self._seen.add(chrom)
        elif pos < last_pos:
            self.sorted = False
        self._last = (chrom, pos)

    def close(self):
        self.file.close()

    def index(self, path):
        """Write the tabix index of the closed file to ``path``."""
        pysam = require('pysam', '--vep (its annotated VCF)')
        pysam.tabix_index(self.path, preset='vcf', index=path, force=True)
