"""Records, sites and alleles of a VCF, streamed with cyvcf2 for scoring (genotypes not read).

    reader = VcfSites('calls.vcf.gz')
    reader.header                        # the header text, #CHROM line cut to the 8 site columns
    for record in reader:                # one Record per VCF record, in file order
        record.line                      # its 8 site columns (CHROM … INFO), tab-separated
        for site in record.sites:        # one Site per ALT allele
            site.chrom, site.pos, site.id, site.ref, site.alt, site.allele

    for site in read_sites('calls.vcf.gz'): ...   # the sites alone

A multi-allelic record gives one :class:`Site` per ALT. Alleles that are not a sequence of
nucleotide letters (symbolic ``<DEL>``, breakends, the ``*`` overlapping deletion, a missing
``.``) are not scorable: they come with ``symbolic=True`` so the caller can count them. Plain,
gzipped and bgzipped VCFs and BCFs are read as htslib reads them, without their samples (the
genotype columns are never parsed). A file htslib cannot read, a bgzipped one cut short, or a
record it cannot parse stops the reading with an :class:`InputError` naming the file, the record
(its line, or the last record read before it) and what is wrong
(:mod:`dlutil.genotypes.vcf_diagnosis`).
"""
import os
import re
from typing import NamedTuple

from dlutil import extras
from dlutil.genotypes import vcf_diagnosis
from dlutil.sequences.onehot import IUPAC
from dlutil.sequences.readers import InputError

_LETTERS = re.compile('^[' + ''.join(IUPAC) + ''.join(IUPAC).lower() + ']+$')

__all__ = ['Site', 'Record', 'VcfSites', 'read_sites']


class Site(NamedTuple):
    """One REF/ALT pair of a VCF record.

    chrom: str; pos: int, 1-based as in the VCF; id: str ('.' if none); ref, alt: str;
    record: int, the record's number among the file's records (1 for the first);
    symbolic: bool, the ALT (or REF) is not a sequence of nucleotide letters;
    allele: int, the ALT's index in the record (0 for the first ALT).
    """
    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    record: int
    symbolic: bool
    allele: int = 0


class Record(NamedTuple):
    """One VCF record: its number (1 for the first), its 8 site columns as text (no newline;
    '' unless asked for) and its sites, one per ALT (a '.' ALT gives one symbolic site)."""
    number: int
    line: str
    sites: list


class VcfSites:
    """The records of the VCF/BCF at ``path``; iterate once. ``lines``: keep each record's
    site columns as text (for an annotated copy).

    Raises
    ------
    InputError: the file is missing, htslib cannot read it as a VCF, or a record cannot be
        parsed (the message names the file and the record before it)
    """

    def __init__(self, path, lines=False):
        self.path, self.lines = os.fspath(path), lines
        VCF = extras.require('cyvcf2', f'--vep {self.path}', extra='vep').VCF
        if not os.path.isfile(self.path):
            raise InputError(f'{self.path}: no such file')
        problem = vcf_diagnosis.check_complete(self.path)
        if problem:
            raise InputError(f'{self.path}: {problem}')
        try:
            with vcf_diagnosis.quiet_htslib(self.path, extra='vep'):
                # samples=[]: the genotype columns are neither parsed nor kept
                self.reader = VCF(self.path, lazy=True, threads=1, samples=[])
        except Exception as error:  # cyvcf2 raises OSError, ValueError or a bare Exception
            raise InputError(f'{self.path}: cannot read it as a VCF: '
                             f'{vcf_diagnosis.header_problem(self.path) or error}') from None
        self.header = self.reader.raw_header

    def __iter__(self):
        number, where = 0, 'the header'
        try:
            with vcf_diagnosis.quiet_htslib(self.path, extra='vep'):
                for number, variant in enumerate(self.reader, 1):
                    chrom, pos, ref, alts = variant.CHROM, variant.POS, variant.REF, variant.ALT
                    where = f'record {number} ({chrom}:{pos})'
                    ident = variant.ID or '.'
                    line = str(variant).rstrip('\n') if self.lines else ''
                    if not alts:  # a monomorphic site: ALT '.'
                        sites = [Site(chrom, pos, ident, ref, '.', number, True, 0)]
                    else:
                        sites = [Site(chrom, pos, ident, ref, alt, number,
                                      not (_LETTERS.match(ref) and _LETTERS.match(alt)), k)
                                 for k, alt in enumerate(alts)]
                    yield Record(number, line, sites)
        except Exception as error:  # htslib's parse errors come as a bare Exception
            line, record, problem = vcf_diagnosis.record_problem(self.path, number + 1, [])
            at = (f'line {line}' + (f' ({record})' if record else '')) if line else \
                f'the record after {where}'
            raise InputError(f'{self.path}, {at}: '
                             f'{problem or f"htslib cannot parse it ({error})"}') from None
        finally:
            self.reader.close()


def read_sites(path):
    """Yield a :class:`Site` per ALT allele of every record of the VCF/BCF at ``path``."""
    for record in VcfSites(path):
        yield from record.sites
