"""Phased VCF/BCF → the genotype HDF5 format, streamed in blocks of variants through cyvcf2.

A record becomes one variant: each diploid sample gives two haplotypes (``<sample>_A`` left of
the ``|``, ``<sample>_B`` right of it), alleles 0 (REF), 1 (ALT) or :data:`~.h5.MISSING`. What is
not one phased biallelic variant per position is handled so (and counted in the summary):

- multi-allelic records (more than one ALT): skipped, or an error with ``multiallelic='error'``;
- a second record at the same position: skipped (the first one is kept);
- unphased heterozygous calls (``0/1``): an error naming the record, or skipped with
  ``unphased='skip'`` (homozygous calls are the same either way and are kept);
- positions that go down, haploid calls, and a second chromosome without ``chromosome=``: errors.
"""
import os

import numpy as np

from dlutil import extras
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
    try:
        return VCF(path, samples=samples, gts012=False, lazy=True, threads=1)
    except Exception as error:  # cyvcf2 raises OSError or its own errors
        raise InputError(f'{path}: not a readable VCF/BCF file ({error})') from None


def vcf_samples(path):
    """The sample names of a VCF/BCF header."""
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
        for record in reader:
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
            gt = record.genotype.array()  # (samples, 3): allele, allele, phased
            if gt.shape[1] != 3 or np.any(gt[:, 1] == -2):
                raise InputError(f'{path}: {chrom}:{pos} has haploid or polyploid calls; '
                                 f'diploid phased genotypes are needed')
            pair = gt[:, :2]
            unphased_het = (gt[:, 2] == 0) & (pair[:, 0] != pair[:, 1])
            if unphased_het.any():
                if unphased == 'error':
                    sample = names[int(np.flatnonzero(unphased_het)[0])]
                    raise InputError(f'{path}: {chrom}:{pos} has an unphased heterozygous call '
                                     f'(sample {sample}); local ancestry needs phased '
                                     f'haplotypes (phase with SHAPEIT, Beagle or Eagle first)')
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


__all__ = ['read_sample_table', 'vcf_samples', 'iter_vcf_blocks', 'vcf_to_h5']
