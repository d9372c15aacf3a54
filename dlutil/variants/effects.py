"""Variant effect prediction: score every REF/ALT pair of a VCF with a trained sequence model.

    counts = score_vcf(model, 'calls.vcf.gz', 'hg38.fa', 'vep/calls.h5', batch_size=128)

For each ALT allele of each record the reference and alternative windows are cut as
:mod:`dlutil.variants.windows` describes, one-hot encoded, and run through the model in batches
of ``batch_size`` variants (the ref and alt windows of a batch in one forward pass). They are
scored as ``-p`` scores (:func:`dlutil.training.evaluation.forward`: the model's input dtype,
``amp``, ``channels_last``, ``prediction_output``, and its ``strand_average`` unless
``strand_average`` says otherwise), so ``diff`` is the difference of what ``-p`` predicts for the
two windows. Per task the output holds the prediction for ref and alt, alt − ref and, for
probabilities (classification and multi-label models), the log-odds difference
logit(alt) − logit(ref), computed in float64 from the logits (see :func:`log_odds_of_logits`).

Memory does not grow with the VCF: records are read one at a time, windows are built a batch
ahead in a background thread (so reading and encoding overlap the model), results are appended to
the HDF5 file a batch at a time, and only the ``top`` largest effects are kept for the TSV.

A REF that does not match the genome is not scored: it is counted, the first few are logged, and
if more than ``max_ref_mismatch`` of the alleles checked (after the first 10,000, and at the end)
mismatch, the run stops with an error: the VCF is likely on another genome build. Symbolic alleles
and chromosomes missing from the genome are counted and skipped.

Output (written under temporary names and renamed at the end):

``OUT.h5``
    ``chrom``, ``id``, ``ref``, ``alt`` (str, as in the VCF), ``pos`` (int64, 1-based),
    ``pred_ref``, ``pred_alt``, ``diff`` (float32, shape=(n, tasks)), ``log_odds_diff`` (for
    probabilities), attributes ``tasks``, ``length``, ``strand_average``, ``vcf``, ``genome``,
    ``probabilities`` and ``counts`` (JSON).
``OUT.top.tsv``
    the ``top`` variants with the largest |alt − ref| over tasks, largest first, with the task
    where it is largest.
"""
import heapq
import json
import logging
import os
import queue
import sys
import tempfile
import threading

import h5py
import numpy as np

from dlutil.data.batches import to_numpy
from dlutil.interpret.sequence_model import input_shape, log_odds_kind, one_hot_input
from dlutil.files import atomic_write
from dlutil.sequences.onehot import encode_batch
from dlutil.sequences.intervals import open_genome, unknown_chrom
from dlutil.sequences.readers import InputError
from dlutil.training.evaluation import evaluating, forward, main_output, network_of
from dlutil.variants.vcf import read_sites
from dlutil.variants.windows import allele_windows, ref_matches

log = logging.getLogger('dlutil')

EARLY_CHECK = 10_000
SHOW_MISMATCHES = 5

__all__ = ['score_vcf', 'VariantScorer', 'log_odds_of_logits']


def log_odds_of_logits(logits, kind):
    """log(p / (1 - p)) of every output, in float64, from the logits (no probability rounded).

    Parameters
    ----------
    logits: array, shape=(n, tasks)
    kind: 'softmax' or 'sigmoid'
        'softmax' (one class per example): l_k - logsumexp of the other classes' logits, so that
        the two classes of a binary classifier have opposite log-odds; 'sigmoid' (independent
        tasks): the logit itself.

    Returns
    -------
    numpy.ndarray, float64, shape=(n, tasks)
    """
    z = np.asarray(logits, np.float64)
    z = z.reshape(len(z), -1)
    if kind == 'sigmoid':
        return z
    if kind != 'softmax':
        raise ValueError(f"log_odds_of_logits: kind must be 'softmax' or 'sigmoid', got {kind!r}")
    if z.shape[1] < 2:
        raise ValueError(f'log_odds_of_logits: a softmax over {z.shape[1]} class has no '
                         f'log-odds; logits of shape {z.shape}')
    rows = np.arange(len(z))
    top = z.argmax(1)
    m1 = z[rows, top]
    rest = z.copy()
    rest[rows, top] = -np.inf
    m2 = rest.max(1)
    # any class but the top one: the others' logsumexp is m1 + log(1 + the rest but itself),
    # shifted by the top logit so nothing overflows
    e = np.exp(rest - m1[:, None])
    others = np.maximum(e.sum(1, keepdims=True) - e, 0.0)
    out = z - m1[:, None] - np.log1p(others)
    # the top class: the others' logsumexp shifted by the second logit (no underflow to -inf)
    out[rows, top] = m1 - m2 - np.log(np.exp(rest - m2[:, None]).sum(1))
    return out


class VariantScorer:
    """The model's predictions, as ``-p`` gives them, and their log-odds for one-hot windows.

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
    shape: tuple
        The per-sequence input shape, (4, L) or (4, 1, L) (see :func:`input_shape`).
    strand_average: bool or None
        None: the model's own ``strand_average``; True or False overrides it.
    """

    def __init__(self, model, shape, strand_average=None):
        self.model, self.shape, self.strand_average = model, tuple(shape), strand_average
        self.network = network_of(model)
        self.kind = log_odds_kind(model)

    def __call__(self, x):
        """x: numpy float32, shape=(n, 4, L) → (predictions, log-odds or None), float64,
        shape=(n, tasks)."""
        with evaluating(self.network):
            inputs = one_hot_input(self.model, x.reshape(len(x), *self.shape))
            raw = to_numpy(forward(self.model, inputs, self.strand_average))
        if hasattr(self.model, 'prediction_output'):
            predictions = self.model.prediction_output(raw)
        else:
            predictions = main_output(raw)
        if isinstance(predictions, dict):
            raise ValueError(f'--vep needs one array of predictions per window, shape (n, '
                             f'tasks); {type(self.model).__name__}.prediction_output returns a '
                             f'dict with keys {sorted(predictions)}')
        predictions = np.asarray(predictions, np.float64).reshape(len(x), -1)
        odds = None if self.kind is None else log_odds_of_logits(main_output(raw), self.kind)
        return predictions, odds


class _Counts(dict):
    def __init__(self):
        super().__init__(records=0, alleles=0, scored=0, ref_mismatch=0, symbolic=0,
                         unknown_chrom=0)
        self.missing = {}

    def check_mismatch(self, threshold, where):
        checked = self['scored'] + self['ref_mismatch']
        if checked and self['ref_mismatch'] / checked > threshold:
            raise InputError(f'{where}: {self["ref_mismatch"]} of {checked} alleles have a REF '
                             f'that does not match the genome (more than --max-ref-mismatch '
                             f'{threshold:g}); is the VCF on another genome build?')


def _windows(sites, genome, sizes, length, batch_size, counts, vcf, max_ref_mismatch):
    """Batches ``(sites, x_ref, x_alt)`` of scorable alleles, x shape=(n, 4, L) float32."""
    batch, ref_seqs, alt_seqs = [], [], []
    last_record, fetchers = 0, {}
    for site in sites:
        counts['alleles'] += 1
        if site.record != last_record:
            counts['records'] += 1
            last_record = site.record
        if site.symbolic:
            counts['symbolic'] += 1
            continue
        if site.chrom not in sizes:
            counts['unknown_chrom'] += 1
            counts.missing[site.chrom] = counts.missing.get(site.chrom, 0) + 1
            continue
        if site.chrom not in fetchers:
            record = genome[site.chrom]
            fetchers = {site.chrom: lambda a, b, r=record: r[a:b].encode('ascii', 'replace')}
        ref_w, alt_w, genome_ref = allele_windows(fetchers[site.chrom], sizes[site.chrom],
                                                  site.pos - 1, site.ref, site.alt, length)
        if not ref_matches(genome_ref, site.ref):
            counts['ref_mismatch'] += 1
            if counts['ref_mismatch'] <= SHOW_MISMATCHES:
                log.warning(f'{vcf}, record {site.record} ({site.chrom}:{site.pos}): REF '
                            f'{site.ref!r} but the genome has {genome_ref!r}; not scored')
            if counts['ref_mismatch'] + counts['scored'] == EARLY_CHECK:
                counts.check_mismatch(max_ref_mismatch, vcf)
            continue
        counts['scored'] += 1
        if counts['ref_mismatch'] + counts['scored'] == EARLY_CHECK:
            counts.check_mismatch(max_ref_mismatch, vcf)
        batch.append(site)
        ref_seqs.append(ref_w)
        alt_seqs.append(alt_w)
        if len(batch) == batch_size:
            yield batch, encode_batch(ref_seqs), encode_batch(alt_seqs)
            batch, ref_seqs, alt_seqs = [], [], []
    if batch:
        yield batch, encode_batch(ref_seqs), encode_batch(alt_seqs)


def _ahead(iterator, depth=2):
    """Run ``iterator`` in a background thread, ``depth`` items ahead; errors re-raised here.

    Closing the returned generator (or leaving it early) stops the thread.
    """
    items, done, stop = queue.Queue(maxsize=depth), object(), threading.Event()

    def put(item):
        while not stop.is_set():  # never blocks for good: the consumer may have gone
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work():
        try:
            for item in iterator:
                if not put(item):
                    return
            put(done)
        except BaseException as error:  # handed to the consumer
            put(error)

    thread = threading.Thread(target=work, daemon=True, name='vep-windows')
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class _Output:
    """Appends a batch at a time to ``OUT.h5`` (a temporary name until :meth:`commit`)."""

    STRINGS = ('chrom', 'id', 'ref', 'alt')
    ARRAYS = ('pred_ref', 'pred_alt', 'diff', 'log_odds_diff')

    def __init__(self, path, tasks, probabilities):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.',
                                        suffix='.tmp')
        os.close(fd)
        self.path, self.n = path, 0
        self.file = h5py.File(self.tmp, 'w')
        text = h5py.string_dtype()
        for name in self.STRINGS:
            self.file.create_dataset(name, (0,), text, maxshape=(None,), chunks=(4096,))
        self.file.create_dataset('pos', (0,), np.int64, maxshape=(None,), chunks=(4096,))
        names = self.ARRAYS if probabilities else self.ARRAYS[:3]
        for name in names:
            self.file.create_dataset(name, (0, tasks), np.float32, maxshape=(None, tasks),
                                     chunks=(max(1, min(4096, 2 ** 20 // (4 * tasks))), tasks))

    def add(self, sites, values):
        n0, n1 = self.n, self.n + len(sites)
        columns = {'chrom': [s.chrom for s in sites], 'id': [s.id for s in sites],
                   'ref': [s.ref for s in sites], 'alt': [s.alt for s in sites],
                   'pos': np.array([s.pos for s in sites], np.int64), **values}
        for name, column in columns.items():
            dataset = self.file[name]
            dataset.resize(n1, axis=0)
            dataset[n0:n1] = column
        self.n = n1

    def commit(self, attrs):
        for key, value in attrs.items():
            self.file.attrs[key] = value
        self.file.close()
        os.replace(self.tmp, self.path)

    def discard(self):
        try:
            self.file.close()
        finally:
            if os.path.exists(self.tmp):
                os.remove(self.tmp)


class _Top:
    """The ``k`` rows with the largest score seen so far (a heap: memory bounded by k)."""

    def __init__(self, k):
        self.k, self.heap, self.seen = k, [], 0

    def add(self, scores, make_row):
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


def score_vcf(model, vcf, genome, out, length=None, batch_size=128, strand_average=None,
              max_ref_mismatch=0.01, top=1000, tasks=None, progress=None):
    """Score every allele of ``vcf``; write ``out`` (HDF5) and ``out`` minus .h5 + .top.tsv.

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
        Takes one-hot DNA, shape=(n, 4, L) or (n, 4, 1, L); returns logits (or a dict with
        ``'y_pred_loss'``), shape=(n, tasks).
    vcf, genome: str
        A VCF/BCF (plain, gzipped or bgzipped) and an indexed FASTA (pyfaidx writes the .fai).
    out: str
        The HDF5 file to write, ending in .h5.
    length: int or None
        Window length; default the model's ``seq_len`` (see :func:`input_shape`).
    batch_size: int
        Variants per forward pass (each gives a ref and an alt window).
    strand_average: bool or None
        None: as the model's ``strand_average`` (as ``-p`` predicts); True: average each
        window's outputs with its reverse complement's; False: the forward strand only.
    max_ref_mismatch: float
        The largest fraction of alleles whose REF may mismatch the genome before it is an error.
    top: int
        Rows of the TSV of largest effects.
    tasks: list of str or None
        Names of the outputs; default task0, task1, ...
    progress: bool or None
        A progress bar (None: on a terminal only).

    Returns
    -------
    dict: the counts (records, alleles, scored, ref_mismatch, symbolic, unknown_chrom)
    """
    if batch_size < 1 or top < 0 or not 0 <= max_ref_mismatch <= 1:
        raise ValueError(f'score_vcf: batch_size must be >= 1, top >= 0 and max_ref_mismatch in '
                         f'[0, 1]; got {batch_size}, {top}, {max_ref_mismatch}')
    if not str(out).endswith('.h5'):
        raise ValueError(f'score_vcf: out must end in .h5, got {out!r}')
    shape = input_shape(model, length)
    length = shape[-1]
    fasta, sizes = open_genome(genome)
    if strand_average is None:
        strand_average = bool(getattr(model, 'strand_average', False))
    scorer = VariantScorer(model, shape, strand_average)
    probabilities = scorer.kind is not None
    counts = _Counts()
    batches = _ahead(_windows(read_sites(vcf), fasta, sizes, length, batch_size, counts, vcf,
                              max_ref_mismatch))
    output, best, names = None, _Top(top), tasks
    from tqdm import tqdm
    bar = tqdm(desc='variants', unit=' variants', mininterval=1, file=sys.stderr,
               disable=None if progress is None else not progress)
    try:
        for sites, x_ref, x_alt in batches:
            predicted, odds = scorer(np.concatenate([x_ref, x_alt]))
            n = len(sites)
            values = {'pred_ref': predicted[:n], 'pred_alt': predicted[n:]}
            values['diff'] = values['pred_alt'] - values['pred_ref']
            if probabilities:
                values['log_odds_diff'] = odds[n:] - odds[:n]
            if output is None:
                n_tasks = values['diff'].shape[1]
                names = list(tasks or [f'task{i}' for i in range(n_tasks)])
                if len(names) != n_tasks:
                    raise ValueError(f'score_vcf: {len(names)} task names for a model with '
                                     f'{n_tasks} outputs')
                output = _Output(out, n_tasks, probabilities)
            output.add(sites, values)
            best.add(np.abs(values['diff']).max(1), lambda i: _top_row(sites[i], values, i,
                                                                       names))
            bar.update(len(sites))
        counts.check_mismatch(max_ref_mismatch, vcf)
        if output is None:
            raise InputError(_nothing_scored(vcf, counts, sizes))
        output.commit({'tasks': names, 'length': length, 'strand_average': strand_average,
                       'vcf': os.path.abspath(vcf), 'genome': os.path.abspath(genome),
                       'probabilities': probabilities, 'counts': json.dumps(counts),
                       'rule': 'windows centred on each trimmed allele; see '
                               'dlutil.variants.windows'})
        output = None
    finally:
        batches.close()  # stops the reading thread, also when scoring failed
        bar.close()
        if output is not None:
            output.discard()
    _write_top(out[:-3] + '.top.tsv', best.rows(), probabilities)
    if counts.missing:
        shown = ', '.join(f'{c} ({n})' for c, n in list(counts.missing.items())[:10])
        log.warning(f'{vcf}: {counts["unknown_chrom"]} alleles on chromosomes the genome lacks, '
                    f'not scored: {shown}')
    log.info(f'{vcf}: scored {counts["scored"]} of {counts["alleles"]} alleles '
             f'({counts["records"]} records; REF mismatches {counts["ref_mismatch"]}, symbolic '
             f'{counts["symbolic"]}, unknown chromosome {counts["unknown_chrom"]}) -> {out}')
    return dict(counts)


def _nothing_scored(vcf, counts, sizes):
    if counts.missing:
        chrom = next(iter(counts.missing))
        return str(unknown_chrom(chrom, sizes, f'{vcf}: no allele scored'))
    return (f'{vcf}: no allele scored ({counts["alleles"]} alleles: {counts["symbolic"]} '
            f'symbolic, {counts["ref_mismatch"]} REF mismatches)')


def _top_row(site, values, i, names):
    task = int(np.argmax(np.abs(values['diff'][i])))
    row = [site.chrom, site.pos, site.id, site.ref, site.alt, names[task]]
    row += [f'{values[k][i, task]:.6g}' for k in ('pred_ref', 'pred_alt', 'diff')]
    if 'log_odds_diff' in values:
        row.append(f'{values["log_odds_diff"][i, task]:.6g}')
    return row


def _write_top(path, rows, probabilities):
    header = ['chrom', 'pos', 'id', 'ref', 'alt', 'task', 'pred_ref', 'pred_alt', 'diff']
    header += ['log_odds_diff'] if probabilities else []
    text = '\t'.join(header) + '\n' + ''.join('\t'.join(map(str, r)) + '\n' for r in rows)
    atomic_write(path, lambda f: f.write(text))
