"""Sites and alleles of a VCF, streamed with cyvcf2 for scoring (genotypes are not read).

    for site in read_sites('calls.vcf.gz'):
        site.chrom, site.pos, site.id, site.ref, site.alt   # one row per ALT allele

A multi-allelic record gives one :class:`Site` per ALT. Alleles that are not a sequence of
nucleotide letters (symbolic ``<DEL>``, breakends, the ``*`` overlapping deletion, a missing
``.``) are not scorable: :func:`read_sites` yields them with ``symbolic=True`` so the caller can
count them. Plain, gzipped and bgzipped VCFs and BCFs are read as htslib reads them.
"""
import os
import re
from typing import NamedTuple

from dlutil.sequences.onehot import IUPAC
from dlutil.sequences.readers import InputError

_LETTERS = re.compile('^[' + ''.join(IUPAC) + ''.join(IUPAC).lower() + ']+$')


class Site(NamedTuple):
    """One REF/ALT pair of a VCF record.

    chrom: str; pos: int, 1-based as in the VCF; id: str ('.' if none); ref, alt: str;
    record: int, the record's number among the file's records (1 for the first);
    symbolic: bool, the ALT (or REF) is not a sequence of nucleotide letters.
    """
    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    record: int
    symbolic: bool


def read_sites(path):
    """Yield a :class:`Site` per ALT allele of every record of the VCF/BCF at ``path``.

    Raises
    ------
    InputError: the file is missing or htslib cannot read it as a VCF
    """
    try:
        from cyvcf2 import VCF
    except ImportError:
        raise InputError('--vep reads VCFs with cyvcf2: pip install cyvcf2') from None
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f'--vep {path}: no such file')
    try:
        reader = VCF(path, lazy=True, threads=1)
    except (OSError, IOError, ValueError) as error:
        raise InputError(f'--vep {path}: cannot read it as a VCF ({error})') from None
    number = 0
    try:
        for number, variant in enumerate(reader, 1):
            ref, alts = variant.REF, variant.ALT
            ident = variant.ID or '.'
            if not alts:  # a monomorphic site: ALT '.'
                yield Site(variant.CHROM, variant.POS, ident, ref, '.', number, True)
                continue
            for alt in alts:
                symbolic = not (_LETTERS.match(ref) and _LETTERS.match(alt))
                yield Site(variant.CHROM, variant.POS, ident, ref, alt, number, bool(symbolic))
    except (OSError, IOError, ValueError) as error:
        raise InputError(f'--vep {path}: cannot read it after {number} records '
                         f'({error})') from None
    finally:
        reader.close()
