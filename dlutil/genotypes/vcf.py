"""Phased VCF/BCF → the genotype HDF5 format, streamed in blocks of variants through cyvcf2.

A record becomes one variant: each diploid sample gives two haplotypes (``<sample>_A`` left of
the ``|``, ``<sample>_B`` right of it), alleles 0 (REF), 1 (ALT) or :data:`~.h5.MISSING`. What is
not one phased biallelic variant per position is handled so (and counted in the summary):

- missing alleles: ``.`` in a phased call (``0|.``, ``.|.``) is that haplotype's allele missing;
  ``./.`` and a lone ``.`` are both haplotypes missing;
- multi-allelic records (more than one ALT): skipped, or an error with ``multiallelic='error'``;
- a second record at the same position: skipped (the first one is kept);
- unphased calls whose two alleles differ (``0/1``, and ``0/.``, where which haplotype holds the
  0 is unknown): an error naming the record and the sample, or the record skipped with
  ``unphased='skip'`` (unphased homozygous calls are the same either way and are kept);
- positions that go down, haploid or polyploid calls, a record without GT, and a second
  chromosome without ``chromosome=``: errors naming the record and the sample.

A file htslib cannot read (cut short, damaged, malformed) is an :class:`InputError` naming the
file, the record (its line, or the last record read) and what was expected
(:mod:`~.vcf_diagnosis`).
"""
import os

import numpy as np

from dlutil import extras
from dlutil.genotypes import vcf_diagnosis
from dlutil.genotypes.h5 import MISSING, GenotypeWriter, haplotype_names
from dlutil.sequences.readers import InputError

HEADER_WORDS = {'sample', 'samples', 'sample_id', 'id', 'iid', 'name'}


def read_sample_table(path):
    """A two-column ``sample<TAB>population`` table → ``{sample: population}``.

    A first line starting with ``#`` or whose first field is a header word (sample, id, iid,
    name, …) is a header; blank lines are ignored; extra columns are an error.

    Raises
    ------
    InputError: naming the file and line
    """
    table = {}
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip('\r\n')
            if not line.strip():
                continue
            fields = line.split('\t')
            if number == 1 and (line.startswith('#') or fields[0].strip().lower()
                                in HEADER_WORDS):
                continue
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise InputError(f'{path}, line {number}: expected two tab-separated columns, '
                                 f'sample and population, got {line!r}')
            sample, population = fields[0].strip(), fields[1].strip()
            if sample in table and table[sample] != population:
                raise InputError(f'{path}, line {number}: sample {sample!r} is listed twice, as '
                                 f'{table[sample]!r} and {population!r}')
            table[sample] = population
    if not table:
        raise InputError(f'{path}: the sample table is empty')
    return table


def _open(path, samples=None):
    VCF = extras.require('cyvcf2', f'reading the VCF/BCF {path}', extra='genotypes').VCF
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such VCF/BCF file')
    problem = vcf_diagnosis.check_complete(path)
    if problem:
        raise InputError(f'{path}: {problem}')
    try:
        return VCF(path, samples=samples, gts012=False, lazy=True, threads=1)
    except Exception as error:  # cyvcf2 raises OSError or a bare Exception
        problem = vcf_diagnosis.header_problem(path) or f'htslib cannot parse its header ({error})'
        raise InputError(f'{path}: not a readable VCF/BCF file: {problem}') from None


def _records(reader, path):
    """``(record, previous)`` for each record of ``reader``; a record htslib cannot read is an
    :class:`InputError` naming the file, its line (or the record before it) and the problem."""
    records, previous = iter(reader), None
    index = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as error:  # cyvcf2 raises a bare Exception
            raise InputError(_read_error(path, reader, index + 1, previous, error)) from None
        index += 1
        yield record
        previous = f'{record.CHROM}:{record.POS}'


def _read_error(path, reader, index, previous, error):
    line, record, problem = vcf_diagnosis.record_problem(path, index, list(reader.samples))
    where = f'line {line}' if line else f'record {index}'
    where += f' ({record})' if record else \
        f' (the record after {previous})' if previous else ' (the first record)'
    problem = problem or (f'htslib cannot parse it ({error}); expected a VCF record of '
                          f'tab-separated columns, or the file is damaged')
    return f'{path}, {where}: {problem}'


def vcf_samples(path):
    """The sample names of a VCF/BCF header."""
    with vcf_diagnosis.quiet_htslib(path):
        reader = _open(path)
    try:
        return list(reader.samples)
    finally:
        reader.close()


def iter_vcf_blocks(path, samples=None, chromosome=None, block=4096, multiallelic='skip',
                    unphased='error', counts=None):
    """Phased genotypes of a VCF/BCF in blocks of variants.

    Parameters
    ----------
    path: str
        VCF or BCF, plain or bgzipped.
    samples: list of str or None
        The samples to read, in this order (None: all of the header's).
    chromosome: str or None
        Read only this chromosome; None requires the file to hold one.
    block: int
        Variants per block.
    multiallelic, unphased: 'skip' or 'error'
    counts: dict or None
        Filled with the counts of ``variants``, ``multiallelic``, ``unphased``,
        ``duplicate_position`` and ``other_chromosome`` records.

    Yields
    ------
    (chromosome, positions, alleles): str, int64 (v,), uint8 (2 × samples, v)
    """
    for name, value in (('multiallelic', multiallelic), ('unphased', unphased)):
        if value not in ('skip', 'error'):
            raise ValueError(f'{name} must be "skip" or "error", got {value!r}')
    counts = {} if counts is None else counts
    for key in ('variants', 'multiallelic', 'unphased', 'duplicate_position',
                'other_chromosome'):
        counts.setdefault(key, 0)
    with vcf_diagnosis.quiet_htslib(path):  # a read error is one line of ours, not htslib's too
        reader = _open(path, samples)
        try:
            names = list(reader.samples)
            if samples is not None and names != list(samples):
                absent = sorted(set(samples) - set(names))
                raise InputError(f'{path}: samples {absent[:10]} are not in the VCF header')
            n_hap = 2 * len(names)
            if n_hap == 0:
                raise InputError(f'{path}: the VCF has no samples')
            positions = np.empty(block, np.int64)
            alleles = np.empty((block, n_hap), np.uint8)
            filled, chrom, last = 0, chromosome, None
            for record in _records(reader, path):
                if not record.CHROM:
                    after = f' after {chrom}:{last}' if last is not None else ''
                    raise InputError(f'{path}: a record{after} has no CHROM (a blank line?); '
                                     f'expected tab-separated VCF records')
                if chrom is None:
                    chrom = record.CHROM
                elif record.CHROM != chrom:
                    if chromosome is not None:
                        counts['other_chromosome'] += 1
                        continue
                    raise InputError(f'{path}: holds more than one chromosome ({chrom}, '
                                     f'{record.CHROM}, ...); choose one (--chrom)')
                pos = record.POS
                if last is not None and pos < last:
                    raise InputError(f'{path}: positions are not sorted: {chrom}:{pos} comes after '
                                     f'{chrom}:{last}; sort it (bcftools sort)')
                if pos == last:
                    counts['duplicate_position'] += 1
                    continue
                if len(record.ALT) > 1:
                    if multiallelic == 'error':
                        raise InputError(f'{path}: {chrom}:{pos} is multi-allelic (ALT '
                                         f'{",".join(record.ALT)}); split or drop such records '
                                         f'(bcftools norm -m-), or skip them')
                    counts['multiallelic'] += 1
                    continue
                where = f'{path}: {chrom}:{pos}'
                try:
                    gt = record.genotype.array()  # (samples, ploidy + 1): alleles, then phased
                except Exception:  # cyvcf2: "couldn't get genotypes for variant"
                    raise InputError(f'{where} has no genotypes (FORMAT '
                                     f'{":".join(record.FORMAT) or "."}); phased genotype calls '
                                     f'(GT, e.g. 0|1) are needed') from None
                pair, phased = diploid_calls(gt, names, where)
                differs = ~phased & (pair[:, 0] != pair[:, 1])
                if differs.any():
                    if unphased == 'error':
                        index = int(np.flatnonzero(differs)[0])
                        raise InputError(_unphased_message(where, names[index], pair[index]))
                    counts['unphased'] += 1
                    continue
                row = pair.reshape(-1)
                alleles[filled] = np.where(row < 0, MISSING, row).astype(np.uint8)
                positions[filled] = pos
                filled += 1
                last = pos
                counts['variants'] += 1
                if filled == block:
                    yield chrom, positions.copy(), np.ascontiguousarray(alleles.T)
                    filled = 0
            if filled:
                yield chrom, positions[:filled].copy(), np.ascontiguousarray(alleles[:filled].T)
        finally:
            reader.close()


def _call_text(alleles, phased):
    return ('|' if phased else '/').join('.' if a < 0 else str(a) for a in alleles)


def diploid_calls(gt, names, where):
    """The two alleles of each sample's call, and whether it is phased.

    Parameters
    ----------
    gt: int array, shape=(samples, ploidy + 1)
        cyvcf2's ``genotype.array()``: alleles (-1 missing, -2 none: a call of lower ploidy),
        then 1 for a phased call.
    names: list of str
        The samples, for messages.
    where: str
        ``file: CHROM:POS``, for messages.

    Returns
    -------
    (pair, phased): int array, shape=(samples, 2), -1 for a missing allele; bool (samples,).
    A lone ``.`` is a missing diploid call: both alleles missing.

    Raises
    ------
    InputError: a haploid (``0``) or polyploid (``0|1|1``) call, naming the sample
    """
    ploidy = gt.shape[1] - 1
    if ploidy == 2 and not (gt[:, 1] == -2).any():  # every call diploid: the common case
        return gt[:, :2], gt[:, 2] != 0
    present = (gt[:, :ploidy] != -2).sum(axis=1)
    lone_missing = (present == 1) & (gt[:, 0] == -1)
    wrong = np.flatnonzero((present != 2) & ~lone_missing)
    if wrong.size:
        index = int(wrong[0])
        alleles = [a for a in gt[index, :ploidy] if a != -2]
        kind = 'haploid' if len(alleles) == 1 else 'polyploid'
        raise InputError(f'{where} has a {kind} call (sample {names[index]}: '
                         f'{_call_text(alleles, gt[index, ploidy])}); diploid calls are needed '
                         f'(a missing call is ./. or .)')
    pair = np.full((len(gt), 2), -1, dtype=gt.dtype)
    pair[~lone_missing] = gt[~lone_missing, :2]
    return pair, (gt[:, ploidy] != 0) | lone_missing


def _unphased_message(where, sample, pair):
    call = _call_text(pair, False)
    if (pair >= 0).all():
        return (f'{where} has an unphased heterozygous call (sample {sample}: {call}); local '
                f'ancestry needs phased haplotypes (phase with SHAPEIT, Beagle or Eagle first, '
                f'or drop such records: prepare vcf --unphased skip)')
    known = int(pair[pair >= 0][0])
    return (f'{where} has an unphased call with one allele missing (sample {sample}: {call}): '
            f'which haplotype carries the {known} is unknown. Phased calls are needed: a missing '
            f'allele is kept as missing in a phased call ({known}|. or .|{known}), and ./. '
            f'marks both missing; or drop such records: prepare vcf --unphased skip')


def vcf_to_h5(vcf, out, sample_table=None, chromosome=None, unlabelled='error',
              multiallelic='skip', unphased='error', block=4096, compression=None,
              progress=None):
    """Convert a phased VCF/BCF (and a sample → population table) to a genotype file.

    Parameters
    ----------
    vcf, out: str
        Input VCF/BCF; output ``.h5`` (written atomically).
    sample_table: str or None
        ``sample<TAB>population``; gives ``label`` (haplotypes,) and the ``ancestries``
        attribute (population names, sorted). None writes no labels.
    unlabelled: 'error' or 'skip'
        What to do with VCF samples the table does not list.
    chromosome, multiallelic, unphased, block: as for :func:`iter_vcf_blocks`
    compression: None, 'lzf' or 'gzip'
    progress: bool or None
        A tqdm bar (None: on a terminal only).

    Returns
    -------
    dict: the summary (counts, haplotypes, variants, ancestries and haplotypes per ancestry)
    """
    from tqdm import tqdm
    if unlabelled not in ('skip', 'error'):
        raise ValueError(f'unlabelled must be "skip" or "error", got {unlabelled!r}')
    header = vcf_samples(vcf)
    samples, ancestries, labels, summary = header, None, None, {}
    if sample_table is not None:
        table = read_sample_table(sample_table)
        missing = [s for s in header if s not in table]
        if missing and unlabelled == 'error':
            raise InputError(f'{sample_table}: {len(missing)} of the {len(header)} samples of '
                             f'{vcf} are not in the table, e.g. {missing[:5]}; add them, or '
                             f'skip them (--drop-unlabelled)')
        samples = [s for s in header if s in table]
        if not samples:
            raise InputError(f'{sample_table}: none of the samples of {vcf} is in the table')
        ancestries = sorted({table[s] for s in samples})
        index = {a: i for i, a in enumerate(ancestries)}
        labels = np.repeat([index[table[s]] for s in samples], 2)
        summary['unlabelled_samples_skipped'] = len(missing)
        summary['table_samples_not_in_vcf'] = len(set(table) - set(header))
    counts = {}
    show = progress if progress is not None else None
    bar = tqdm(desc=f'prepare vcf {os.path.basename(vcf)}', unit=' variants', disable=(
        not show if show is not None else None), leave=False)
    chrom, writer = None, None
    try:
        for chrom, positions, alleles in iter_vcf_blocks(vcf, samples, chromosome, block,
                                                         multiallelic, unphased, counts):
            if writer is None:
                writer = GenotypeWriter(out, haplotype_names(samples), chrom, ancestries,
                                        haplotype_labels=labels, compression=compression)
            writer.append(positions, alleles)
            bar.update(len(positions))
        if writer is None:
            raise InputError(f'{vcf}: no usable variants (counts: {counts})')
        writer.close()
    except BaseException:
        if writer is not None:
            writer.discard()  # no half-written file stays behind
        raise
    finally:
        bar.close()
    summary.update({'vcf': vcf, 'out': out, 'chromosome': chrom,
                    'haplotypes': 2 * len(samples), 'skipped': {k: v for k, v in counts.items()
                                                                if k != 'variants'},
                    'variants': counts['variants'], 'ancestries': ancestries})
    if labels is not None:
        summary['haplotypes_per_ancestry'] = {a: int(np.sum(labels == i))
                                              for i, a in enumerate(ancestries)}
    return summary


__all__ = ['read_sample_table', 'vcf_samples', 'iter_vcf_blocks', 'diploid_calls', 'vcf_to_h5']
