"""The model's input windows for the reference and the alternative allele of a variant.

The rule (the same for SNVs, MNVs, insertions and deletions):

1. **Trim.** The alleles lose their shared trailing, then leading, bases (the anchor base VCF
   puts before an indel): ``A -> ATT`` at 1-based position p becomes ``'' -> TT`` at p + 1. What
   is left is the changed stretch: ``ref`` at genome [s, s + r), replaced by ``alt`` (a letters).
2. **Centre.** Each window is centred on its own allele with the rule ``prepare`` uses for an
   interval (:func:`dlutil.sequences.readers.window`): an allele at [s, s + m) gets the window
   [c - L // 2, c - L // 2 + L) with c = (2s + m) // 2. The reference window is cut from the
   genome; the alternative window from the alternative haplotype (the genome with ``ref``
   replaced by ``alt``), so both have the genome's flanks on both sides: an insertion pushes the
   flanks out equally on both sides, a deletion pulls more flank in on both sides. For an SNV
   the two windows differ at one letter, L // 2 (0-based) for any L.
3. **Pad.** Letters off either end of the chromosome are N, as ``prepare --off-end pad`` has
   them (one-hot 0.25 in all four rows, as the encoder writes every N).
4. **Shift** (``--vep-shifts S``): the same windows moved by s = -S … +S letters (s > 0 moves the
   window right, so the allele sits s letters left of its centre), the reference and the
   alternative window alike; the model's outputs are averaged over the 2S + 1 pairs.

The minus strand is the reverse complement of these windows (``onehot.reverse_complement``).
"""
from dlutil.sequences.intervals import cut, window

__all__ = ['trim_alleles', 'allele_windows', 'shifted_windows', 'ref_matches']


def trim_alleles(pos, ref, alt):
    """Drop the shared trailing, then leading, letters of two alleles (case-insensitive).

    Parameters
    ----------
    pos: int
        0-based genome position of ``ref``'s first letter.
    ref, alt: str

    Returns
    -------
    (start, ref, alt): the 0-based start of what changes and the trimmed alleles; either may be
    empty (an insertion has ``ref == ''``, a deletion ``alt == ''``)
    """
    upper_ref, upper_alt = ref.upper(), alt.upper()
    j = 0
    while j < min(len(ref), len(alt)) and upper_ref[-1 - j] == upper_alt[-1 - j]:
        j += 1
    ref, alt = ref[:len(ref) - j], alt[:len(alt) - j]
    i = 0
    while i < min(len(ref), len(alt)) and upper_ref[i] == upper_alt[i]:
        i += 1
    return pos + i, ref[i:], alt[i:]


def ref_matches(genome_ref, ref):
    """Whether a VCF REF matches the genome's letters (case-insensitive; N in REF matches any)."""
    if len(genome_ref) != len(ref):
        return False
    return all(r == 'N' or r == g for r, g in zip(ref.upper(), genome_ref.upper()))


def allele_windows(fetch, size, pos, ref, alt, length):
    """The reference and alternative windows of one variant, and the genome's letters at REF.

    Parameters
    ----------
    fetch: callable
        ``fetch(a, b)`` returns bytes [a, b) of the chromosome, 0 <= a < b <= size.
    size: int
        The chromosome's length.
    pos: int
        0-based position of the VCF's REF (the VCF's POS - 1).
    ref, alt: str
        The alleles as in the VCF (untrimmed).
    length: int
        The window length L.

    Returns
    -------
    (ref_window, alt_window, genome_ref): bytes of L letters each, and the genome's letters
    where the VCF says REF is (str, N off the chromosome), for :func:`ref_matches`
    """
    refs, alts, genome_ref = shifted_windows(fetch, size, pos, ref, alt, length, 0)
    return refs[0], alts[0], genome_ref


def shifted_windows(fetch, size, pos, ref, alt, length, shifts):
    """:func:`allele_windows` moved by -shifts … +shifts letters: (ref windows, alt windows,
    genome_ref), two lists of 2 * shifts + 1 windows (the unshifted pair in the middle)."""
    big, flank = len(ref), length + shifts
    # one fetch per variant: REF with L + shifts letters of flank either side holds them all
    segment = cut(fetch, pos - flank, pos + big + flank, size)
    genome_ref = segment[flank:flank + big].decode('ascii', 'replace')
    start, tref, talt = trim_alleles(pos, ref, alt)
    at = start - pos + flank  # the trimmed ref in segment coordinates
    haplotype = segment[:at] + talt.encode('ascii') + segment[at + len(tref):]
    ref_lo, _ = window(at, at + len(tref), length)
    alt_lo, _ = window(at, at + len(talt), length)
    moves = range(-shifts, shifts + 1)
    ref_windows = [segment[ref_lo + s:ref_lo + s + length] for s in moves]
    alt_windows = [haplotype[alt_lo + s:alt_lo + s + length] for s in moves]
    assert all(len(w) == length for w in ref_windows + alt_windows), (length, shifts)
    return ref_windows, alt_windows, genome_ref
