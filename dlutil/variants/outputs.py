"""The files ``--vep`` writes, appended a batch at a time and committed together.

``OUT.h5``
    ``chrom``, ``id``, ``ref``, ``alt`` (str), ``pos`` (int64, 1-based), one row per scored
    allele; ``pred_ref``, ``pred_alt`` (float32, shape=(n, tasks)); one dataset per score,
    shape=(n, columns) (a column per task, or one after ``--vep-aggregate-tasks``): float32, but
    ``log_odds`` float64.
``OUT.top.tsv``
    The ``top`` alleles with the largest absolute first score, largest first: ``chrom pos id ref
    alt task``, then ``pred_ref pred_alt`` (not after a task rule, which has no one prediction),
    then every score, all at the task where the first score is largest.
``OUT.vcf.gz`` and ``OUT.vcf.gz.tbi``
    The input's records with the scores in INFO fields (:mod:`dlutil.variants.annotated`).

All four are written under temporary names and renamed together by :meth:`Output.commit`: the old
``.h5`` and ``.vcf.gz.tbi`` are removed first, then the ``.top.tsv``, ``.vcf.gz``, ``.tbi`` and the
``.h5`` are renamed, the ``.h5`` last. So a reader that sees the ``.h5`` sees the others of the
same run, and a ``.vcf.gz`` is never beside an index of another run.
"""
import contextlib
import heapq
import logging
import os

import h5py
import numpy as np

from dlutil.files import AtomicFiles
from dlutil.h5output import H5Output
from dlutil.variants.annotated import AnnotatedVcf

log = logging.getLogger('dlutil')

__all__ = ['Output', 'Top', 'paths']

STRINGS = ('chrom', 'id', 'ref', 'alt')
BLOCK = 8192  # rows written to the HDF5 file at a time


def paths(out):
    """The four files of ``out`` (ending in .h5): .top.tsv, .vcf.gz, .vcf.gz.tbi, .h5."""
    stem = out[:-3]
    return stem + '.top.tsv', stem + '.vcf.gz', stem + '.vcf.gz.tbi', out


class Output:
    """The files of one ``--vep`` run, open for appending.

    Parameters
    ----------
    out: str
        The .h5 path.
    tasks, columns: list of str
        The prediction columns' and the score columns' names.
    scores: list of str
    header: str
        The input VCF's header (8 columns).
    ids: dict
        ``{(score, column): INFO ID}``.
    source: str
        The model, for the INFO descriptions.
    """

    def __init__(self, out, tasks, columns, scores, header, ids, source):
        self.path, self.scores = out, list(scores)
        self.n = self.written = 0  # rows added, rows in the file
        self.pending = []
        self.files = AtomicFiles(*paths(out))
        self.tmp_top, self.tmp_vcf, self.tmp_tbi, tmp = self.files.temporaries
        self.output = self.vcf = None
        try:
            self.output = H5Output(tmp, out)
            self.file = self.output.file
            text = h5py.string_dtype()
            for name in STRINGS:
                self.file.create_dataset(name, (0,), text, maxshape=(None,), chunks=(4096,))
            self.file.create_dataset('pos', (0,), np.int64, maxshape=(None,), chunks=(4096,))
            arrays = [('pred_ref', len(tasks), np.float32), ('pred_alt', len(tasks), np.float32)]
            arrays += [(name, len(columns), np.float64 if name == 'log_odds' else np.float32)
                       for name in scores]
            for name, width, dtype in arrays:
                self.file.create_dataset(name, (0, width), dtype, maxshape=(None, width),
                                         chunks=(max(1, min(4096, 2 ** 20 // (8 * width))),
                                                 width))
            self.vcf = AnnotatedVcf(self.tmp_vcf, header, ids, source)
        except BaseException as error:
            self.discard(error)
            raise

    def add(self, sites, pred_ref, pred_alt, values):
        """Append a batch's alleles: their predictions and ``values`` ({score: array}). Rows go
        to the HDF5 file in blocks of at least :data:`BLOCK` (each resize of a dataset costs)."""
        self.pending.append((sites, {'pred_ref': pred_ref, 'pred_alt': pred_alt, **values}))
        self.n += len(sites)
        if self.n - self.written >= BLOCK:
            self._flush()

    def _flush(self):
        if not self.pending:
            return
        sites = [site for batch, _ in self.pending for site in batch]
        columns = {'chrom': [s.chrom for s in sites], 'id': [s.id for s in sites],
                   'ref': [s.ref for s in sites], 'alt': [s.alt for s in sites],
                   'pos': np.array([s.pos for s in sites], np.int64)}
        for name in self.pending[0][1]:
            columns[name] = np.concatenate([arrays[name] for _, arrays in self.pending])
        n0, n1 = self.written, self.written + len(sites)
        for name, column in columns.items():
            dataset = self.file[name]
            dataset.resize(n1, axis=0)
            dataset[n0:n1] = column
        self.written, self.pending = n1, []
        self.output.check()  # a full disk stops the run here, not after the whole VCF

    def commit(self, attrs, top_text):
        """Close the files, index the VCF and rename all four into place."""
        try:
            self._flush()
            for key, value in attrs.items():
                self.file.attrs[key] = value
            self.output.close()
            with open(self.tmp_top, 'w', encoding='utf-8') as handle:
                handle.write(top_text)
            self.vcf.close()
            if self.vcf.sorted:
                self.vcf.index(self.tmp_tbi)
        except BaseException as error:
            self.discard(error)
            raise
        tsv, vcf, tbi, h5 = self.files.targets
        for old in (h5, tbi):  # the .h5 first: nothing looks complete until it is back
            with contextlib.suppress(FileNotFoundError):
                os.remove(old)
        if not self.vcf.sorted:  # no index to rename: the VCF goes without one
            log.warning(f'{vcf}: not indexed, as the input VCF\'s records are not sorted by '
                        f'position (bcftools sort, then tabix -p vcf, index it)')
            self.files.targets.remove(tbi)
            self.files.temporaries.remove(self.tmp_tbi)
        self.files.commit()

    def discard(self, error):
        """Remove the temporary files after ``error``; a disk fault is raised as the
        :class:`StorageError` naming the file."""
        if self.output is not None:
            self.output.abandon()
        if self.vcf is not None:
            with contextlib.suppress(Exception):
                self.vcf.close()
        self.files.abandon(error)


class Top:
    """The ``k`` rows with the largest score seen so far (a heap: memory bounded by k)."""

    def __init__(self, k):
        self.k, self.heap, self.seen = k, [], 0

    def add(self, scores, make_row):
        scores = np.nan_to_num(scores, nan=-np.inf)
        for i in np.argsort(-scores, kind='stable')[:self.k]:
            entry = (float(scores[i]), -self.seen - i, i)
            if len(self.heap) < self.k:
                heapq.heappush(self.heap, entry[:2] + (make_row(i),))
            elif entry[:2] > self.heap[0][:2]:
                heapq.heapreplace(self.heap, entry[:2] + (make_row(i),))
            else:
                break  # sorted: nothing further in this batch gets in
        self.seen += len(scores)

    def rows(self):
        return [row for _, _, row in sorted(self.heap, key=lambda e: e[:2], reverse=True)]


def top_header(scores, predictions):
    """The columns of the top-effects TSV."""
    return (['chrom', 'pos', 'id', 'ref', 'alt', 'task'] +
            (['pred_ref', 'pred_alt'] if predictions else []) + list(scores))


def top_row(site, task, label, pred_ref, pred_alt, values, predictions):
    """One TSV row: the allele, the task's label, its predictions and scores at ``task``."""
    row = [site.chrom, site.pos, site.id, site.ref, site.alt, label]
    if predictions:
        row += [f'{pred_ref[task]:.6g}', f'{pred_alt[task]:.6g}']
    return row + [f'{v[task]:.6g}' for v in values]


def top_text(header, rows):
    return '\t'.join(header) + '\n' + ''.join('\t'.join(map(str, r)) + '\n' for r in rows)
