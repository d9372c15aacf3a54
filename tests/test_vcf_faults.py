"""VCF files htslib cannot read, and calls that are not phased diploid ones, as `prepare vcf` and
the genotype readers report them: one line naming the file, the record and what was expected."""
import os

import h5py
import numpy as np
import pytest

from dlutil.genotypes.h5 import MISSING
from dlutil.genotypes.vcf import vcf_to_h5
from dlutil.prepare.cli import main as prepare_main
from dlutil.sequences.readers import InputError

SAMPLES = ['s1', 's2', 's3', 's4']
HEADER = ('##fileformat=VCFv4.2\n##contig=<ID=chr7>\n'
          '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
          '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
          '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t' + '\t'.join(SAMPLES) + '\n')
HEADER_LINES = HEADER.count('\n')


def vcf_text(n, calls=None, fmt='GT'):
    """``n`` phased records on chr7 at 100, 110, …; ``calls``: {index: [call per sample]}."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        gts = (calls or {}).get(i) or [f'{a}|{b}' for a, b in rng.integers(0, 2, (4, 2))]
        lines.append(f'chr7\t{100 + 10 * i}\t.\tA\tG\t.\tPASS\t.\t{fmt}\t' + '\t'.join(gts) + '\n')
    return HEADER + ''.join(lines)


def write(path, text):
    path.write_text(text)
    return str(path)


def bgzip(tmp_path, name, text, fmt='z'):
    """``text`` as a bgzipped VCF (``fmt`` 'z') or a BCF ('b'), through pysam's htslib."""
    import pysam
    plain = write(tmp_path / (name + '.plain.vcf'), text)
    out = str(tmp_path / name)
    if fmt == 'z':
        pysam.tabix_compress(plain, out, force=True)
    else:
        with pysam.VariantFile(plain) as src, pysam.VariantFile(out, 'wb', header=src.header) \
                as dst:
            for record in src:
                dst.write(record)
    return out


def cut(path, size):
    with open(path, 'rb') as handle:
        data = handle.read()
    with open(path, 'wb') as handle:
        handle.write(data[:size(len(data))])
    return path


def refused(vcf, tmp_path, capfd, *extra):
    """``prepare vcf`` on ``vcf``: its one line of error, after checking it wrote nothing (and
    that htslib printed nothing of its own: ``capfd`` sees what C code writes to stderr)."""
    out = tmp_path / 'out'
    assert prepare_main(['vcf', vcf, '-o', str(out), *extra]) == 1
    err = capfd.readouterr().err.strip()
    assert err.startswith('error: ') and '\n' not in err and 'Exception' not in err, err
    assert not out.exists()  # no half file, no folder
    return err


# -- files htslib cannot read ---------------------------------------------------------------------
def test_a_bgzip_cut_at_a_block_boundary_is_refused_not_read_in_part(tmp_path, capfd):
    # htslib reads a file without BGZF's end-of-file block to where it stops, with a warning
    vcf = cut(bgzip(tmp_path, 'cut.vcf.gz', vcf_text(3000)), lambda size: size - 28)
    err = refused(vcf, tmp_path, capfd)
    assert f'{vcf}: truncated' in err and 'end-of-file block' in err


@pytest.mark.parametrize('fmt', ['z', 'b'])
def test_a_bgzip_or_bcf_cut_in_half_is_reported_as_truncated(tmp_path, capfd, fmt):
    name = 'half.vcf.gz' if fmt == 'z' else 'half.bcf'
    vcf = cut(bgzip(tmp_path, name, vcf_text(3000), fmt), lambda size: size // 2)
    assert f'{vcf}: truncated' in refused(vcf, tmp_path, capfd)


def test_damaged_compressed_data_is_named(tmp_path, capfd):
    vcf = bgzip(tmp_path, 'flipped.vcf.gz', vcf_text(3000))
    with open(vcf, 'r+b') as handle:  # 64 bytes flipped mid-file; the end-of-file block intact
        handle.seek(os.path.getsize(vcf) // 2)
        data = handle.read(64)
        handle.seek(-64, 1)
        handle.write(bytes(b ^ 0xFF for b in data))
    err = refused(vcf, tmp_path, capfd)
    assert err.startswith(f'error: {vcf}') and 'the compressed data is damaged near line' in err


def test_a_plain_vcf_cut_mid_line_names_the_line_and_the_record(tmp_path, capfd):
    text = vcf_text(40)
    vcf = write(tmp_path / 'cut.vcf', text[:text.index('chr7\t400\t') + 30])
    err = refused(vcf, tmp_path, capfd)
    assert err == (f'error: {vcf}, line {HEADER_LINES + 31} (chr7:400): the line is cut off: '
                   f'the file is truncated')


def test_malformed_records_name_the_line_and_what_was_expected(tmp_path, capfd):
    lines = vcf_text(12).splitlines(keepends=True)
    at = HEADER_LINES + 5  # the 6th record, chr7:150

    def with_line(name, new):
        edited = list(lines)
        edited[at] = new(edited[at])
        return write(tmp_path / name, ''.join(edited))

    few = with_line('few.vcf', lambda line: '\t'.join(line.split('\t')[:10]) + '\n')
    assert refused(few, tmp_path, capfd).endswith(
        f'{few}, line {at + 1} (chr7:150): 10 tab-separated columns where 13 were expected '
        f'(8 fixed, FORMAT and 4 samples)')
    gt = with_line('gt.vcf', lambda line: line.rstrip('\n').rsplit('\t', 1)[0] + '\t0|x\n')
    assert refused(gt, tmp_path, capfd).endswith(
        f"{gt}, line {at + 1} (chr7:150): sample s4 has GT '0|x'; expected allele numbers or ., "
        f"e.g. 0|1 or .|.")
    pos = with_line('pos.vcf', lambda line: line.replace('\t150\t', '\t15O\t'))
    assert f"{pos}, line {at + 1} (chr7:15O): POS '15O' is not a position" in \
        refused(pos, tmp_path, capfd)


def test_a_record_without_gt_names_the_record(tmp_path, capfd):
    vcf = write(tmp_path / 'dp.vcf', vcf_text(3, {i: ['7'] * 4 for i in range(3)}, fmt='DP'))
    assert refused(vcf, tmp_path, capfd) == (
        f'error: {vcf}: chr7:100 has no genotypes (FORMAT DP); phased genotype calls (GT, e.g. '
        f'0|1) are needed')


def test_header_problems_are_named(tmp_path, capfd):
    twice = write(tmp_path / 'twice.vcf', vcf_text(3).replace('\ts2\t', '\ts1\t'))
    assert refused(twice, tmp_path, capfd) == (
        f'error: {twice}: not a readable VCF/BCF file: the #CHROM line names sample s1 twice')
    other = write(tmp_path / 'other.vcf', 'sample\tpopulation\ns1\tAFR\n')
    assert "line 1 is 'sample\\tpopulation'; a VCF starts with ##fileformat=VCFv4.x" in \
        refused(other, tmp_path, capfd)


def test_the_genotype_reader_raises_the_same_named_error(tmp_path):
    # the local-ancestry def.py converts through vcf_to_h5: the same message, as an InputError
    text = vcf_text(20)
    vcf = write(tmp_path / 'cut.vcf', text[:-5])
    with pytest.raises(InputError, match=rf'cut.vcf, line {HEADER_LINES + 20} \(chr7:290\): '
                                         r'the line is cut off'):
        vcf_to_h5(vcf, str(tmp_path / 'cut.h5'))


# -- calls that are not phased diploid ones -------------------------------------------------------
def test_a_half_missing_unphased_call_is_not_called_heterozygous(tmp_path, capfd):
    vcf = write(tmp_path / 'half.vcf', vcf_text(3, {1: ['0|0', '1|1', '0/.', '0|1']}))
    err = refused(vcf, tmp_path, capfd)
    assert err.startswith(f'error: {vcf}: chr7:110 has an unphased call with one allele missing '
                          f'(sample s3: 0/.): which haplotype carries the 0 is unknown')
    assert 'heterozygous' not in err
    summary = vcf_to_h5(vcf, str(tmp_path / 'half.h5'), unphased='skip')
    assert summary['variants'] == 2 and summary['skipped']['unphased'] == 1


def test_missing_calls_are_missing_on_their_haplotypes(tmp_path):
    # a lone '.' (every sample, or beside diploid calls) is a missing diploid call, not haploid
    calls = {0: ['.', '.', '.', '.'], 1: ['.', '0|1', './.', '1|.'],
             2: ['0/0', '.|1', '1/1', '0|1']}
    vcf = write(tmp_path / 'missing.vcf', vcf_text(3, calls))
    out = str(tmp_path / 'missing.h5')
    assert vcf_to_h5(vcf, out)['variants'] == 3
    with h5py.File(out) as handle:
        data = handle['data'][()]  # (haplotypes, variants): s1_A, s1_B, s2_A, …
    m = MISSING
    assert data.T.tolist() == [[m] * 8, [m, m, 0, 1, m, m, 1, m], [0, 0, m, 1, 1, 1, 0, 1]]


@pytest.mark.parametrize('call, kind', [('1', 'haploid'), ('0|1|1', 'polyploid')])
def test_haploid_and_polyploid_calls_name_the_sample(tmp_path, capfd, call, kind):
    vcf = write(tmp_path / 'ploidy.vcf', vcf_text(3, {2: ['0|0', '1|1', call, '0|1']}))
    assert refused(vcf, tmp_path, capfd) == (
        f'error: {vcf}: chr7:120 has a {kind} call (sample s3: {call}); diploid calls are '
        f'needed (a missing call is ./. or .)')
    assert not os.path.exists(tmp_path / 'ploidy.h5')


# -- the same faults through --vep's site reader ---------------------------------------------------
def vep_error(vcf):
    """The error ``--vep``'s reader raises on ``vcf`` (all its records read)."""
    from dlutil.variants.vcf import read_sites
    with pytest.raises(InputError) as raised:
        list(read_sites(vcf))
    return str(raised.value)


def test_vep_refuses_a_bgzip_cut_at_a_block_boundary(tmp_path):
    vcf = cut(bgzip(tmp_path, 'cut.vcf.gz', vcf_text(3000)), lambda size: size - 28)
    err = vep_error(vcf)
    assert err.startswith(f'{vcf}: truncated') and 'end-of-file block' in err


def test_vep_names_the_line_of_a_malformed_record(tmp_path, capfd):
    text = vcf_text(20).replace('chr7\t150\t', 'chr7\tabc\t')
    err = vep_error(write(tmp_path / 'bad.vcf', text))
    assert err == (f"{tmp_path / 'bad.vcf'}, line {HEADER_LINES + 6} (chr7:abc): POS 'abc' "
                   f"is not a position (a whole number)")
    assert capfd.readouterr().err == ''  # htslib's own lines are off while we read


def test_vep_names_a_header_htslib_refuses(tmp_path):
    vcf = write(tmp_path / 'nohead.vcf', 'chr7\t100\t.\tA\tG\t.\tPASS\t.\n')
    err = vep_error(vcf)
    assert err.startswith(f'{vcf}: cannot read it as a VCF: ') and 'fileformat' in err
