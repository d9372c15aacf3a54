"""Variant effects: windows for SNVs and indels on both strands and at chromosome ends, and
scoring a VCF with a planted-motif model (the motif-destroying variant has the largest effect)."""
import h5py
import numpy as np
import pytest
import torch

from dlutil.sequences.onehot import decode, encode_batch, reverse_complement
from dlutil.sequences.readers import InputError
from dlutil.variants.effects import score_vcf
from dlutil.variants.windows import allele_windows, trim_alleles
from planted_motif import LENGTH, MOTIF, MOTIF2, load_planted, random_dna

CHROM = 'ACGTACGTAC'


def log_odds(p):
    """logit(p) = log(p / (1 - p)) of probabilities, clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def windows(pos, ref, alt, length, chrom=CHROM):
    """allele_windows on a string chromosome, decoded (VCF 1-based pos)."""
    ref_w, alt_w, genome_ref = allele_windows(lambda a, b: chrom[a:b].encode(), len(chrom),
                                              pos - 1, ref, alt, length)
    return ref_w.decode(), alt_w.decode(), genome_ref


def test_trim_drops_shared_suffix_then_prefix():
    assert trim_alleles(10, 'A', 'ATT') == (11, '', 'TT')
    assert trim_alleles(10, 'ATT', 'A') == (11, 'TT', '')
    assert trim_alleles(10, 'C', 'G') == (10, 'C', 'G')
    assert trim_alleles(10, 'ACGT', 'AGGT') == (11, 'C', 'G')
    # an insertion in a repeat keeps the leftmost position a left-aligned VCF gives it
    assert trim_alleles(10, 'AT', 'ATT') == (11, '', 'T')


@pytest.mark.parametrize('pos, ref, alt, length, expected_ref, expected_alt', [
    # SNV at 0-based 4 (A): c = 4, window [1, 7); the changed letter is at L // 2 = 3
    (5, 'A', 'G', 6, 'CGTACG', 'CGTGCG'),
    (5, 'A', 'G', 5, 'GTACG', 'GTGCG'),
    # insertion of TT after the A at 0-based 4: alt haplotype ACGTA|TT|CGTAC, TT centred
    (5, 'A', 'ATT', 6, 'GTACGT', 'TATTCG'),
    # deletion of CG (0-based 5-6) after anchor A: ref centred on CG, alt on the junction
    (5, 'ACG', 'A', 6, 'TACGTA', 'GTATAC'),
    # chromosome ends: N beyond either end
    (1, 'A', 'C', 6, 'NNNACG', 'NNNCCG'),
    (10, 'C', 'T', 6, 'GTACNN', 'GTATNN'),
    (2, 'C', 'CGGGG', 8, 'NNACGTAC', 'ACGGGGGT'),
])
def test_windows_decode_to_the_expected_sequences(pos, ref, alt, length, expected_ref,
                                                  expected_alt):
    ref_w, alt_w, genome_ref = windows(pos, ref, alt, length)
    assert (ref_w, alt_w) == (expected_ref, expected_alt)
    assert genome_ref == CHROM[pos - 1:pos - 1 + len(ref)]
    # encoded and decoded back, and on the minus strand as the reverse complement
    x = encode_batch([ref_w.encode(), alt_w.encode()])
    assert [decode(row) for row in x] == [expected_ref, expected_alt]
    complement = str.maketrans('ACGTN', 'TGCAN')
    assert [decode(row) for row in reverse_complement(x)] == \
        [s.translate(complement)[::-1] for s in (expected_ref, expected_alt)]


def reference_windows(chrom, pos, ref, alt, length):
    """The rule written the slow way: the whole padded chromosome and haplotype as strings."""
    pad = 'N' * (length + len(ref) + len(alt))
    genome = pad + chrom + pad
    start, r, a = trim_alleles(pos - 1, ref, alt)
    s = start + len(pad)
    haplotype = genome[:s] + a + genome[s + len(r):]

    def centred(seq, at, m):
        left = (2 * at + m) // 2 - length // 2
        return seq[left:left + length]
    return centred(genome, s, len(r)), centred(haplotype, s, len(a))


def test_windows_match_the_slow_rule_everywhere():
    rng = np.random.default_rng(1)
    chrom = random_dna(rng, 40)
    for _ in range(300):
        pos = int(rng.integers(1, 41))
        length = int(rng.integers(3, 30))
        ref = chrom[pos - 1:pos - 1 + int(rng.integers(1, 6))]
        alt = ref[0] + random_dna(rng, int(rng.integers(0, 8))) if rng.random() < 0.7 \
            else random_dna(rng, len(ref))
        if alt.upper() == ref.upper():
            continue
        assert windows(pos, ref, alt, length, chrom)[:2] == \
            reference_windows(chrom, pos, ref, alt, length), (pos, ref, alt, length)


# -- scoring a VCF --------------------------------------------------------------------------
@pytest.fixture
def genome(tmp_path):
    """chr1: 400 random letters with MOTIF at 0-based 100 and MOTIF2 at 300; chr2: 30 letters."""
    rng = np.random.default_rng(7)
    chrom = list(random_dna(rng, 400))
    chrom[100:107], chrom[300:307] = MOTIF, MOTIF2
    chrom = ''.join(chrom)
    for motif in (MOTIF, MOTIF2):  # planted once each, nowhere else
        assert chrom.count(motif) == 1
    text = '>chr1\n' + '\n'.join(chrom[i:i + 60] for i in range(0, 400, 60)) + \
        '\n>chr2\n' + random_dna(rng, 30) + '\n'
    path = tmp_path / 'genome.fa'
    path.write_text(text)
    return path, {'chr1': chrom}


def write_vcf(path, rows):
    header = ('##fileformat=VCFv4.2\n##contig=<ID=chr1,length=400>\n##contig=<ID=chr2,'
              'length=30>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n')
    path.write_text(header + ''.join('\t'.join(map(str, r)) + '\t.\t.\t.\n' for r in rows))
    return path


def variant_rows(chrom):
    """(chrom, pos, id, ref, alt): the motif-destroying SNV, harmless ones, indels, ends."""
    def at(pos, n=1):
        return chrom[pos - 1:pos - 1 + n]
    other = {'A': 'C', 'C': 'G', 'G': 'T', 'T': 'A'}
    rows = [('chr1', 104, 'breaks_ap1', at(104), other[at(104)]),
            ('chr1', 20, 'far', at(20), other[at(20)]),
            ('chr1', 200, 'ins', at(200), at(200) + 'GAT'),
            ('chr1', 250, 'del', at(250, 3), at(250)),
            ('chr1', 303, 'weak_gc', at(303), other[at(303)] + ',' + other[other[at(303)]]),
            ('chr1', 2, 'start', at(2), other[at(2)]),
            ('chr1', 399, 'end', at(399), other[at(399)]),
            ('chr1', 50, 'sv', at(50), '<DEL>'),
            ('chrX', 5, 'nochrom', 'A', 'C')]
    return rows


def test_score_vcf_finds_the_motif_breaking_variant(tmp_path, genome):
    fasta, chroms = genome
    _, model = load_planted(tmp_path)
    vcf = write_vcf(tmp_path / 'calls.vcf', variant_rows(chroms['chr1']))
    out = tmp_path / 'vep' / 'calls.h5'
    counts = score_vcf(model, str(vcf), str(fasta), str(out), batch_size=3, tasks=['ap1', 'gc'],
                       progress=False)
    assert counts == {'records': 9, 'alleles': 10, 'scored': 8, 'ref_mismatch': 0,
                      'symbolic': 1, 'unknown_chrom': 1}
    with h5py.File(out) as f:
        ids = [s.decode() for s in f['id'][:]]
        assert ids == ['breaks_ap1', 'far', 'ins', 'del', 'weak_gc', 'weak_gc', 'start', 'end']
        assert list(f['pos'][:]) == [104, 20, 200, 250, 303, 303, 2, 399]
        pred_ref, pred_alt, diff = f['pred_ref'][:], f['pred_alt'][:], f['diff'][:]
        assert pred_ref.shape == (8, 2) and f.attrs['length'] == LENGTH
        np.testing.assert_allclose(diff, pred_alt - pred_ref, atol=1e-6)
        np.testing.assert_allclose(f['log_odds_diff'][:], log_odds(pred_alt) - log_odds(pred_ref),
                                   rtol=1e-5, atol=1e-5)
        # the model's probabilities: sigmoid(+1) with the motif, sigmoid(-2) without
        sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        np.testing.assert_allclose(pred_ref[0], [sigmoid(1), sigmoid(-2)], rtol=1e-5)
        np.testing.assert_allclose(pred_alt[0], [sigmoid(-2), sigmoid(-2)], rtol=1e-5)
        np.testing.assert_allclose(f['log_odds_diff'][0], [-3, 0], atol=1e-4)
    lines = (tmp_path / 'vep' / 'calls.top.tsv').read_text().splitlines()
    assert lines[0].split('\t') == ['chrom', 'pos', 'id', 'ref', 'alt', 'task', 'pred_ref',
                                    'pred_alt', 'diff', 'log_odds_diff']
    top = [line.split('\t') for line in lines[1:]]
    assert top[0][2] == 'breaks_ap1' and top[0][5] == 'ap1'
    assert {row[2] for row in top[1:3]} == {'weak_gc'} and top[1][5] == 'gc'
    assert len(top) == 8


def test_batch_size_and_strands(tmp_path, genome):
    """Batch size never changes the outputs; strand averaging is the mean over both strands."""
    fasta, chroms = genome
    _, model = load_planted(tmp_path)
    torch.manual_seed(0)
    with torch.no_grad():  # random weights: the strands differ
        for p in model.network.parameters():
            p.copy_(torch.randn_like(p))
    vcf = write_vcf(tmp_path / 'calls.vcf', variant_rows(chroms['chr1'])[:7])
    outputs = {}
    for name, batch, strands in (('b1', 1, False), ('b5', 5, False), ('avg', 4, True)):
        score_vcf(model, str(vcf), str(fasta), str(tmp_path / f'{name}.h5'), batch_size=batch,
                  strand_average=strands, progress=False)
        with h5py.File(tmp_path / f'{name}.h5') as f:
            outputs[name] = f['pred_ref'][:], f['pred_alt'][:]
    np.testing.assert_allclose(outputs['b1'][0], outputs['b5'][0], rtol=1e-6)
    np.testing.assert_allclose(outputs['b1'][1], outputs['b5'][1], rtol=1e-6)
    # by hand: each allele's windows and their reverse complements through the network
    rows = variant_rows(chroms['chr1'])[:7]
    fetch = lambda a, b: chroms['chr1'][a:b].encode()  # noqa: E731
    seqs = [allele_windows(fetch, 400, pos - 1, ref, alt, LENGTH)[:2]
            for _, pos, _, ref, alts, in rows for alt in alts.split(',')]
    for k, column in enumerate(zip(*seqs)):  # k = 0: ref windows, 1: alt windows
        x = torch.from_numpy(encode_batch(list(column)))
        with torch.no_grad():
            logits = (model.network(x) + model.network(reverse_complement(x))) / 2
        np.testing.assert_allclose(outputs['avg'][k], torch.sigmoid(logits).numpy(), rtol=1e-5)
    assert not np.allclose(outputs['avg'][0], outputs['b1'][0])


def test_ref_mismatch_is_counted_and_an_error_above_the_threshold(tmp_path, genome, caplog):
    import logging
    logger = logging.getLogger('dlutil')  # the CLI's setup stops it propagating to caplog's
    logger.addHandler(caplog.handler)
    try:
        check_ref_mismatch(tmp_path, genome, caplog)
    finally:
        logger.removeHandler(caplog.handler)


def check_ref_mismatch(tmp_path, genome, caplog):
    fasta, chroms = genome
    _, model = load_planted(tmp_path)
    rows = variant_rows(chroms['chr1'])[:7]
    wrong = 'A' if chroms['chr1'][19] != 'A' else 'C'
    rows[1] = ('chr1', 20, 'wrong_ref', wrong, 'G' if wrong != 'G' else 'T')
    vcf = write_vcf(tmp_path / 'calls.vcf', rows)
    counts = score_vcf(model, str(vcf), str(fasta), str(tmp_path / 'ok.h5'),
                       max_ref_mismatch=0.2, progress=False)
    assert counts['ref_mismatch'] == 1 and counts['scored'] == 7
    assert 'record 2 (chr1:20)' in caplog.text and 'not scored' in caplog.text
    with h5py.File(tmp_path / 'ok.h5') as f:
        assert 'wrong_ref' not in [s.decode() for s in f['id'][:]]
    with pytest.raises(InputError, match=r'calls.vcf: 1 of 8 alleles have a REF that does not '
                                         r'match the genome .*--max-ref-mismatch 0.1'):
        score_vcf(model, str(vcf), str(fasta), str(tmp_path / 'bad.h5'), max_ref_mismatch=0.1,
                  progress=False)
    assert not (tmp_path / 'bad.h5').exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.bad.h5')]


def test_unknown_chromosomes_only_is_an_error_with_a_hint(tmp_path, genome):
    fasta, _ = genome
    _, model = load_planted(tmp_path)
    vcf = write_vcf(tmp_path / 'calls.vcf', [('1', 5, '.', 'A', 'C')])
    with pytest.raises(InputError, match='no allele scored.*did you mean chr1'):
        score_vcf(model, str(vcf), str(fasta), str(tmp_path / 'x.h5'), progress=False)


# -- the command line ---------------------------------------------------------------------------
def test_cli_vep_with_a_checkpoint(tmp_path, genome, cli):
    from dlutil.search import results
    fasta, chroms = genome
    module, model = load_planted(tmp_path)
    checkpoint = tmp_path / 'best.pt'
    results.save_checkpoint(str(checkpoint), {'model': model.state_dict(), 'epoch': 1,
                                              'config': {}})
    vcf = write_vcf(tmp_path / 'calls.vcf', variant_rows(chroms['chr1']))
    (tmp_path / 'data').mkdir()
    code, err = cli('--model', tmp_path / 'planted_def.py', '--data', tmp_path / 'data',
                    '--result', tmp_path / 'res', '--vep', vcf, '--genome', fasta,
                    '--checkpoint', checkpoint, '--cpu', '--vep-top', 2)
    assert code == 0, err
    assert 'scored 8 of 10 alleles' in err
    with h5py.File(tmp_path / 'res' / 'vep' / 'calls.h5') as f:
        assert list(f.attrs['tasks']) == ['ap1', 'gc']  # the def.py's CLASS_NAMES
        assert f['diff'].shape == (8, 2)
    top = (tmp_path / 'res' / 'vep' / 'calls.top.tsv').read_text().splitlines()
    assert len(top) == 3 and top[1].split('\t')[2] == 'breaks_ap1'


def test_cli_vep_errors(tmp_path, genome, cli):
    fasta, _ = genome
    load_planted(tmp_path)
    (tmp_path / 'data').mkdir()
    base = ('--model', tmp_path / 'planted_def.py', '--data', tmp_path / 'data', '--result',
            tmp_path / 'res')
    with pytest.raises(SystemExit) as exit_info:
        cli(*base, '--vep', fasta)
    assert exit_info.value.code == 2
    code, err = cli(*base, '--vep', fasta, '--genome', fasta)  # no trained model yet
    assert code == 1 and 'no trained model there' in err and 'Traceback' not in err
    code, err = cli(*base, '--vep', fasta, '--genome', fasta, '--checkpoint', fasta)
    assert code == 1 and f'--checkpoint {fasta}: cannot load it' in err


def test_a_file_that_is_not_a_vcf(tmp_path, genome):
    fasta, _ = genome
    _, model = load_planted(tmp_path)
    vcf = tmp_path / 'bad.vcf'
    vcf.write_text('this is not a VCF\n')
    with pytest.raises(InputError, match=f'--vep {vcf}: cannot read it'):
        score_vcf(model, str(vcf), str(fasta), str(tmp_path / 'x.h5'), progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_scores_equal_the_cpu_scores(tmp_path, genome):
    fasta, chroms = genome
    module, cpu_model = load_planted(tmp_path, background=1.0)
    cuda_model = module.Model({'background': 1.0}, device='cuda')
    vcf = write_vcf(tmp_path / 'calls.vcf', variant_rows(chroms['chr1'])[:7])
    for name, model in (('cpu', cpu_model), ('cuda', cuda_model)):
        score_vcf(model, str(vcf), str(fasta), str(tmp_path / f'{name}.h5'), progress=False,
                  strand_average=True)
    with h5py.File(tmp_path / 'cpu.h5') as a, h5py.File(tmp_path / 'cuda.h5') as b:
        np.testing.assert_allclose(a['diff'][:], b['diff'][:], atol=1e-5)


def test_a_failure_stops_the_reader_and_leaves_no_file(tmp_path, genome):
    import threading
    fasta, chroms = genome
    _, model = load_planted(tmp_path)
    vcf = write_vcf(tmp_path / 'calls.vcf', variant_rows(chroms['chr1']) * 20)
    with pytest.raises(ValueError, match='1 task names for a model with 2 outputs'):
        score_vcf(model, str(vcf), str(fasta), str(tmp_path / 'x.h5'), batch_size=2,
                  tasks=['ap1'], progress=False)
    assert not [t for t in threading.enumerate() if t.name == 'vep-windows']
    assert not [p for p in tmp_path.iterdir() if 'x.h5' in p.name]
