"""Variant effect prediction: score every REF/ALT pair of a VCF with a trained sequence model.

    counts = score_vcf(model, 'calls.vcf.gz', 'hg38.fa', 'vep/calls.h5', batch_size=128,
                       scores=['diff', 'log_fold_change'], shifts=1)

For each ALT allele of each record the reference and alternative windows are cut as
:mod:`dlutil.variants.windows` describes (with ``shifts``, 2 * shifts + 1 pairs of them, moved by
-shifts … +shifts letters), one-hot encoded (N, and letters past a chromosome end, as 0.25 in all
four rows, or as ``iupac`` says: what ``prepare`` makes of them) and run through the model, ``batch_size`` variants at
a time (at most 2 * ``batch_size`` windows a forward pass). They are scored as ``-p`` scores
(:func:`dlutil.training.evaluation.forward`: the model's input dtype, ``amp``,
``channels_last``, ``prediction_output``, and its ``strand_average`` unless ``strand_average``
says otherwise). The shifted windows' outputs are averaged as strand averaging averages the two
strands': each output tensor (the logits, and probabilities a network returns beside them), before
``prediction_output``; so without shifts ``pred_ref`` and ``pred_alt`` are exactly what ``-p``
predicts for the two windows. The scores are :mod:`dlutil.variants.scores`'.

Memory does not grow with the VCF: records are read one at a time, windows are built a batch
ahead in a background thread (so reading and encoding overlap the model), results are appended to
the HDF5 file and the annotated VCF a batch at a time, and only the ``top`` largest effects are
kept for the TSV (:mod:`dlutil.variants.outputs`).

A REF that does not match the genome is not scored: it is counted, the first few are logged, and
if more than ``max_ref_mismatch`` of the alleles checked (after the first 10,000, and at the end)
mismatch, the run stops with an error: the VCF is likely on another genome build. Symbolic alleles
and chromosomes missing from the genome are counted and skipped (their records are copied to the
annotated VCF without scores).
"""
import json
import logging
import os
import queue
import sys
import threading
from typing import NamedTuple

import numpy as np

from dlutil.data.batches import concat, to_numpy
from dlutil.interpret.sequence_model import input_shape, log_odds_kind, one_hot_input
from dlutil.sequences.intervals import open_genome, unknown_chrom
from dlutil.sequences.onehot import encode_batch
from dlutil.sequences.readers import InputError
from dlutil.training.evaluation import evaluating, forward, main_output, network_of
from dlutil.variants.annotated import info_ids
from dlutil.variants.outputs import Output, Top, top_header, top_row, top_text
from dlutil.variants.scores import Outputs, Scoring, default_scores, log_odds_of_logits
from dlutil.variants.vcf import VcfSites
from dlutil.variants.windows import ref_matches, shifted_windows

log = logging.getLogger('dlutil')

EARLY_CHECK = 10_000
SHOW_MISMATCHES = 5
RECORDS_PER_BATCH = 1024  # records handed on even when few of their alleles are scored

__all__ = ['score_vcf', 'VariantScorer', 'log_odds_of_logits']


def _rows(values, n):
    """Predictions or logits as float64, (n,) made (n, 1)."""
    values = np.asarray(values, np.float64)
    return values.reshape(n, 1) if values.ndim == 1 else values


def _group_mean(raw, group):
    """The mean of every ``group`` consecutive rows (per array of a dict), in float64."""
    if isinstance(raw, dict):
        return {key: _group_mean(value, group) for key, value in raw.items()}
    raw = np.asarray(raw, np.float64)
    return raw.reshape(len(raw) // group, group, *raw.shape[1:]).mean(1)


class VariantScorer:
    """The model's predictions, as ``-p`` gives them, and its logits for one-hot windows.

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
    shape: tuple
        The per-sequence input shape, (4, L) or (4, 1, L) (see :func:`input_shape`).
    strand_average: bool or None
        None: the model's own ``strand_average``; True or False overrides it.
    chunk: int or None
        The most windows a forward pass takes (None: all at once).
    """

    def __init__(self, model, shape, strand_average=None, chunk=None):
        self.model, self.shape, self.strand_average = model, tuple(shape), strand_average
        self.network, self.chunk = network_of(model), chunk
        self.kind = log_odds_kind(model)

    def __call__(self, x, group=1):
        """x: numpy float32, shape=(n * group, 4, L) → :class:`Outputs` (predictions and, for
        probabilities, logits; float64, shape=(n, tasks) or (n, tasks, positions)), each the mean
        of ``group`` consecutive windows' outputs."""
        step, parts = self.chunk or len(x), []
        with evaluating(self.network):
            for start in range(0, len(x), step):
                part = x[start:start + step]
                inputs = one_hot_input(self.model, part.reshape(len(part), *self.shape))
                parts.append(to_numpy(forward(self.model, inputs, self.strand_average)))
        raw = concat(parts) if len(parts) > 1 else parts[0]
        if group > 1:
            raw = _group_mean(raw, group)
        n = len(x) // group
        if hasattr(self.model, 'prediction_output'):
            predictions = self.model.prediction_output(raw)
        else:
            predictions = main_output(raw)
        if isinstance(predictions, dict):
            raise ValueError(f'--vep needs one array of predictions per window, shape (n, '
                             f'tasks); {type(self.model).__name__}.prediction_output returns a '
                             f'dict with keys {sorted(predictions)}')
        logits = None if self.kind is None else _rows(main_output(raw), n)
        return Outputs(_rows(predictions, n), logits)


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


class _Batch(NamedTuple):
    """Scorable alleles and their windows (x: (n * (2 * shifts + 1), 4, L), None when there is
    no allele), and the records all of whose alleles are in this batch or an earlier one."""
    sites: list
    x_ref: object
    x_alt: object
    done: list


def _batches(records, genome, sizes, length, batch_size, shifts, counts, vcf,
             max_ref_mismatch, iupac):
    """:class:`_Batch` es of at most ``batch_size`` scorable alleles, in file order; N and
    the other IUPAC codes encoded by the ``iupac`` policy of :func:`encode_batch`."""
    batch, refs, alts, done = [], [], [], []
    fetchers = {}

    def flush():
        encoded = (encode_batch(refs, iupac), encode_batch(alts, iupac)) if batch \
            else (None, None)
        return _Batch(batch, *encoded, done)

    for record in records:
        counts['records'] += 1
        for site in record.sites:
            counts['alleles'] += 1
            if site.symbolic:
                counts['symbolic'] += 1
                continue
            if site.chrom not in sizes:
                counts['unknown_chrom'] += 1
                counts.missing[site.chrom] = counts.missing.get(site.chrom, 0) + 1
                continue
            if site.chrom not in fetchers:
                chrom = genome[site.chrom]
                fetchers = {site.chrom: lambda a, b, r=chrom: r[a:b].encode('ascii', 'replace')}
            ref_w, alt_w, genome_ref = shifted_windows(
                fetchers[site.chrom], sizes[site.chrom], site.pos - 1, site.ref, site.alt,
                length, shifts)
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
            refs.extend(ref_w)
            alts.extend(alt_w)
            if len(batch) == batch_size:
                yield flush()
                batch, refs, alts, done = [], [], [], []
        done.append(record)
        if len(done) >= RECORDS_PER_BATCH:
            yield flush()
            batch, refs, alts, done = [], [], [], []
    if batch or done:
        yield flush()


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


def score_vcf(model, vcf, genome, out, length=None, batch_size=128, strand_average=None,
              max_ref_mismatch=0.01, top=1000, tasks=None, progress=None, scores=None,
              aggregate_tasks='none', aggregate_positions=None, shifts=0, pseudocount=1.0,
              info_prefix='dlutil', source=None, iupac='uniform'):
    """Score every allele of ``vcf``; write ``out`` (HDF5) and, beside it, ``.top.tsv``,
    ``.vcf.gz`` and ``.vcf.gz.tbi`` (see :mod:`dlutil.variants.outputs`).

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
        Takes one-hot DNA, shape=(n, 4, L) or (n, 4, 1, L); returns logits (or a dict with
        ``'y_pred_loss'``), shape=(n, tasks), or with ``aggregate_positions`` (n, tasks,
        positions).
    vcf, genome: str
        A VCF/BCF (plain, gzipped or bgzipped) and an indexed FASTA (pyfaidx writes the .fai).
    out: str
        The HDF5 file to write, ending in .h5.
    length: int or None
        Window length; default the model's ``seq_len`` (see :func:`input_shape`).
    batch_size: int
        Variants per batch (each gives a ref and an alt window per shift; a forward pass takes
        at most 2 * batch_size windows).
    strand_average: bool or None
        None: as the model's ``strand_average`` (as ``-p`` predicts); True: average each
        window's outputs with its reverse complement's; False: the forward strand only.
    max_ref_mismatch: float
        The largest fraction of alleles whose REF may mismatch the genome before it is an error.
    top: int
        Rows of the TSV of largest effects.
    tasks: list of str or None
        Names of the model's outputs; default task0, task1, ...
    progress: bool or None
        A progress bar (None: on a terminal only).
    scores: list of str or None
        Of :data:`dlutil.variants.scores.SCORES`; None: ``diff``, and ``log_odds`` for
        probabilities.
    aggregate_tasks, aggregate_positions, pseudocount:
        As :class:`dlutil.variants.scores.Scoring` takes them (``tasks``, ``positions``).
    shifts: int
        Average the outputs over windows moved by -shifts … +shifts letters.
    info_prefix, source: str
        The INFO fields' prefix, and the model as their descriptions name it.
    iupac: {'uniform', 'fractional', 'zeros'}
        How N (the genome's, and past a chromosome end) and the other IUPAC codes are encoded,
        as ``prepare --iupac`` (see :mod:`dlutil.sequences.onehot`): match the training data.

    Returns
    -------
    dict: the counts (records, alleles, scored, ref_mismatch, symbolic, unknown_chrom)
    """
    if batch_size < 1 or top < 0 or not 0 <= max_ref_mismatch <= 1 or shifts < 0:
        raise ValueError(f'score_vcf: batch_size must be >= 1, top >= 0, shifts >= 0 and '
                         f'max_ref_mismatch in [0, 1]; got {batch_size}, {top}, {shifts}, '
                         f'{max_ref_mismatch}')
    if not str(out).endswith('.h5'):
        raise ValueError(f'score_vcf: out must end in .h5, got {out!r}')
    out = str(out)
    positional = aggregate_positions is not None
    shape = input_shape(model, length, positional=positional)
    length = shape[-1]
    if strand_average is None:
        strand_average = bool(getattr(model, 'strand_average', False))
    group = 2 * shifts + 1
    scorer = VariantScorer(model, shape, strand_average, chunk=2 * batch_size)
    scoring = Scoring(scores or default_scores(scorer.kind, positional), scorer.kind,
                      aggregate_tasks, aggregate_positions, pseudocount)
    # one window of N first: the outputs' shape, before any file is opened
    n_outputs = scorer(encode_batch([b'N' * length], iupac)).predictions.shape
    scoring.check(n_outputs)
    names = list(tasks or [f'task{i}' for i in range(n_outputs[1])])
    if len(names) != n_outputs[1]:
        raise ValueError(f'score_vcf: {len(names)} task names for a model with '
                         f'{n_outputs[1]} outputs')
    if scoring.binary:
        names = names[1:]
        log.info(f'--vep: a two-class classifier; scoring class 1 ({names[0]}), the positive '
                 f'class, only (class 0 is its complement)')
    columns = scoring.labels(names)
    fasta, sizes = open_genome(genome)
    reader = VcfSites(vcf, lines=True)
    counts = _Counts()
    output = Output(out, names, columns, scoring.scores, reader.header,
                    info_ids(info_prefix, scoring.scores, columns),
                    source or type(model).__name__)
    batches = _ahead(_batches(reader, fasta, sizes, length, batch_size, shifts, counts, vcf,
                              max_ref_mismatch, iupac))
    header = top_header(scoring.scores, aggregate_tasks == 'none')
    best, scored = Top(top), {}
    from tqdm import tqdm
    bar = tqdm(desc='variants', unit=' variants', mininterval=1, file=sys.stderr,
               disable=None if progress is None else not progress)
    try:
        for batch in batches:
            if batch.sites:
                _score_batch(batch, scorer, scoring, group, output, best, scored, columns,
                             aggregate_tasks == 'none')
                bar.update(len(batch.sites))
            output.vcf.write(batch.done, scored)
        counts.check_mismatch(max_ref_mismatch, vcf)
        if not output.n:
            raise InputError(_nothing_scored(vcf, counts, sizes))
        output.commit({'tasks': columns, 'prediction_tasks': names, 'scores': scoring.scores,
                       'aggregate_tasks': aggregate_tasks,
                       'aggregate_positions': aggregate_positions or 'none',
                       'shifts': shifts, 'pseudocount': scoring.pseudocount, 'iupac': iupac,
                       'length': length, 'strand_average': strand_average,
                       'vcf': os.path.abspath(vcf), 'genome': os.path.abspath(genome),
                       'probabilities': scorer.kind is not None, 'counts': json.dumps(counts),
                       'rule': 'windows centred on each trimmed allele; see '
                               'dlutil.variants.windows'},
                      top_text(header, best.rows()))
        output = None
    except BaseException as error:
        if output is not None:
            output.discard(error)  # no temporary file stays; a disk fault names the file
        raise
    finally:
        batches.close()  # stops the reading thread, also when scoring failed
        bar.close()
    if counts.missing:
        shown = ', '.join(f'{c} ({n})' for c, n in list(counts.missing.items())[:10])
        log.warning(f'{vcf}: {counts["unknown_chrom"]} alleles on chromosomes the genome lacks, '
                    f'not scored: {shown}')
    log.info(f'{vcf}: scored {counts["scored"]} of {counts["alleles"]} alleles '
             f'({counts["records"]} records; REF mismatches {counts["ref_mismatch"]}, symbolic '
             f'{counts["symbolic"]}, unknown chromosome {counts["unknown_chrom"]}) -> {out}, '
             f'{out[:-3]}.top.tsv, {out[:-3]}.vcf.gz')
    return dict(counts)


def _score_batch(batch, scorer, scoring, group, output, best, scored, columns, predictions):
    """Score one batch: append it to the HDF5 file, offer it to the top rows, and keep each
    allele's values for the annotated VCF (``scored``)."""
    n = len(batch.sites)
    both = scorer(np.concatenate([batch.x_ref, batch.x_alt]), group)
    logits = both.logits
    ref = Outputs(both.predictions[:n], None if logits is None else logits[:n])
    alt = Outputs(both.predictions[n:], None if logits is None else logits[n:])
    pred_ref, pred_alt, values = scoring(ref, alt)
    output.add(batch.sites, pred_ref, pred_alt, values)
    first = np.abs(values[scoring.scores[0]])
    tasks = np.nan_to_num(first, nan=-np.inf).argmax(1)
    ordered = [values[name] for name in scoring.scores]

    def row(i):
        return top_row(batch.sites[i], tasks[i], columns[tasks[i]], pred_ref[i], pred_alt[i],
                       [v[i] for v in ordered], predictions)

    best.add(first[np.arange(n), tasks], row)
    # float32, as the VCF keeps them; Python floats format fast
    flat = np.concatenate(ordered, axis=1).astype(np.float32).tolist()
    for site, values in zip(batch.sites, flat):
        scored[site.record, site.allele] = values


def _nothing_scored(vcf, counts, sizes):
    if counts.missing:
        chrom = next(iter(counts.missing))
        return str(unknown_chrom(chrom, sizes, f'{vcf}: no allele scored'))
    return (f'{vcf}: no allele scored ({counts["alleles"]} alleles: {counts["symbolic"]} '
            f'symbolic, {counts["ref_mismatch"]} REF mismatches)')


