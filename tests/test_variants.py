"""Variant effects: windows for SNVs and indels on both strands and at chromosome ends, and
scoring a VCF with a planted-motif model (the motif-destroying variant has the largest effect)."""
import textwrap

import h5py
import numpy as np
import pytest
import torch

from dlutil.sequences.onehot import decode, encode_batch, reverse_complement
from dlutil.sequences.readers import InputError
from dlutil.variants.effects import log_odds_of_logits, score_vcf
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
        np.testing.assert_allclose(f['log_odds'][:], log_odds(pred_alt) - log_odds(pred_ref),
                                   rtol=1e-5, atol=1e-5)
        # the model's probabilities: sigmoid(+1) with the motif, sigmoid(-2) without
        sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        np.testing.assert_allclose(pred_ref[0], [sigmoid(1), sigmoid(-2)], rtol=1e-5)
        np.testing.assert_allclose(pred_alt[0], [sigmoid(-2), sigmoid(-2)], rtol=1e-5)
        np.testing.assert_allclose(f['log_odds'][0], [-3, 0], atol=1e-4)
    lines = (tmp_path / 'vep' / 'calls.top.tsv').read_text().splitlines()
    assert lines[0].split('\t') == ['chrom', 'pos', 'id', 'ref', 'alt', 'task', 'pred_ref',
                                    'pred_alt', 'diff', 'log_odds']
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
    with pytest.raises(InputError, match=f'^{vcf}: cannot read it'):
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


# -- one evaluation path: --vep scores as -p predicts -------------------------------------------
def allele_window_batch(chrom, rows, length):
    """The ref windows, then the alt windows, of every allele of ``rows``, one-hot (2n, 4, L)."""
    fetch = lambda a, b: chrom[a:b].encode()  # noqa: E731
    pairs = [allele_windows(fetch, len(chrom), pos - 1, ref, alt, length)[:2]
             for _, pos, _, ref, alts in rows for alt in alts.split(',')]
    return encode_batch([ref for ref, _ in pairs] + [alt for _, alt in pairs])


def write_checkpoint(path, model, config):
    from dlutil.search import results
    results.save_checkpoint(str(path), {'model': model.state_dict(), 'epoch': 1,
                                        'config': config})


@pytest.fixture
def classifier_windows(tmp_path, genome, classifier_def):
    """A softmax classifier (dict output: probabilities and logits) as a checkpoint, a VCF, and
    data/windows.h5 holding its alleles' ref windows, then alt windows (L = 40)."""
    from conftest import write_h5
    from dlutil.definition import load_module
    fasta, chroms = genome
    rows = variant_rows(chroms['chr1'])[:7]
    data = tmp_path / 'data'
    data.mkdir()
    write_h5(data / 'windows.h5', allele_window_batch(chroms['chr1'], rows, 40)[:, :, None, :])
    config = {'filters': 4, 'lr': 0.01}
    torch.manual_seed(3)
    model = load_module(str(classifier_def)).Model(config, device='cpu')
    write_checkpoint(tmp_path / 'best.pt', model, config)
    averaged = tmp_path / 'averaged_def.py'
    averaged.write_text(classifier_def.read_text() + '\nModel.strand_average = True\n')
    vcf = write_vcf(tmp_path / 'calls.vcf', rows)
    return {'plain': classifier_def, 'averaged': averaged, 'data': data, 'vcf': vcf,
            'fasta': fasta, 'checkpoint': tmp_path / 'best.pt', 'model': model}


def vep_and_predict(cli, tmp_path, setup, name, definition, *flags):
    """``-p windows.h5 --vep calls.vcf`` in one command line: (-p predictions, the vep file)."""
    result = tmp_path / name
    code, err = cli('--model', setup[definition], '--data', setup['data'], '--result', result,
                    '-p', 'windows.h5', '--vep', setup['vcf'], '--genome', setup['fasta'],
                    '--checkpoint', setup['checkpoint'], '--seq-len', 40, '--cpu', *flags)
    assert code == 0, err
    predicted = np.load(result / 'predictions' / 'windows.h5.npy')
    with h5py.File(result / 'vep' / 'calls.h5') as f:
        vep = {key: f[key][:] for key in ('pred_ref', 'pred_alt', 'diff', 'log_odds')}
        vep['strand_average'] = bool(f.attrs['strand_average'])
        vep['tasks'] = list(f.attrs['tasks'])
    return predicted, vep


def test_cli_vep_effects_are_differences_of_predictions(tmp_path, cli, classifier_windows):
    """--vep's effects are -p's predictions of the alt windows minus the ref windows', with and
    without strand averaging (the model's own, or --strand-average); log-odds from the logits.
    A two-class classifier is scored on class 1 only: one task, the positive class."""
    setup = classifier_windows
    plain, vep_plain = vep_and_predict(cli, tmp_path, setup, 'plain', 'plain')
    averaged, vep_averaged = vep_and_predict(cli, tmp_path, setup, 'averaged', 'averaged')
    _, vep_flag = vep_and_predict(cli, tmp_path, setup, 'flag', 'plain', '--strand-average')
    n = len(plain) // 2
    assert not np.allclose(plain, averaged, atol=1e-4)  # the strands differ: averaging matters
    for predicted, vep in ((plain, vep_plain), (averaged, vep_averaged), (averaged, vep_flag)):
        assert vep['pred_ref'].shape == vep['diff'].shape == vep['log_odds'].shape == (n, 1)
        np.testing.assert_allclose(vep['pred_ref'], predicted[:n, 1:], atol=1e-6)
        np.testing.assert_allclose(vep['pred_alt'], predicted[n:, 1:], atol=1e-6)
        np.testing.assert_allclose(vep['diff'], predicted[n:, 1:] - predicted[:n, 1:],
                                   atol=1e-6)
    assert [vep['strand_average'] for vep in (vep_plain, vep_averaged, vep_flag)] == \
        [False, True, True]
    # the log-odds of class 1 are l1 - l0 of the (strand-averaged) logits, computed by hand
    with h5py.File(setup['data'] / 'windows.h5') as f:
        x = torch.from_numpy(f['data'][:])
    network = setup['model'].network.eval()
    with torch.no_grad():
        logits = network(x)['y_pred_loss'].double()
        both = (logits + network(reverse_complement(x))['y_pred_loss'].double()) / 2
    for z, vep in ((logits, vep_plain), (both, vep_averaged), (both, vep_flag)):
        odds = (z[:, 1] - z[:, 0]).numpy()
        np.testing.assert_allclose(vep['log_odds'][:, 0], odds[n:] - odds[:n], atol=1e-5)
    # the top-effects TSV: one task, the class-1 name, on every row
    top = (tmp_path / 'plain' / 'vep' / 'calls.top.tsv').read_text().splitlines()
    assert top[0].split('\t')[5:] == ['task', 'pred_ref', 'pred_alt', 'diff', 'log_odds']
    assert {line.split('\t')[5] for line in top[1:]} == {vep_plain['tasks'][0]}
    assert vep_plain['tasks'] == ['task1']  # class 1 of task0, task1: no CLASS_NAMES


def planted_variants(tmp_path, genome):
    """The planted def.py module, the variants whose windows have no N as a VCF, and their
    ref windows then alt windows (L = 60)."""
    fasta, chroms = genome
    module, _ = load_planted(tmp_path)
    rows = [variant_rows(chroms['chr1'])[i] for i in (0, 2, 3, 4)]
    vcf = write_vcf(tmp_path / 'calls.vcf', rows)
    return module, vcf, allele_window_batch(chroms['chr1'], rows, LENGTH)


def vep_predictions(tmp_path, model, vcf, genome, n, name):
    """--vep's pred_ref and pred_alt, all alleles in one forward pass (as -p with 2n rows)."""
    out = tmp_path / f'{name}.h5'
    score_vcf(model, str(vcf), str(genome[0]), str(out), batch_size=n, progress=False)
    with h5py.File(out) as f:
        return np.concatenate([f['pred_ref'][:], f['pred_alt'][:]]), f['diff'][:]


def test_vep_honours_amp_input_dtype_and_to_input(tmp_path, genome):
    """A model's amp, input_dtype and to_input give --vep the numbers they give -p."""
    from dlutil.data.matrix import MatrixBatchGenerator
    module, vcf, X = planted_variants(tmp_path, genome)
    n = len(X) // 2

    class Mixed(module.Model):
        amp = 'bf16'

    class Double(module.Model):  # a float64 network, fed integer one-hot data by -p
        input_dtype = torch.float64

        def init_model(self):
            super().init_model()
            self.network.double()

    class Scaled(module.Model):
        def to_input(self, x):
            return super().to_input(x) * 0.5

    plain = module.Model({'background': 1.0}, device='cpu')
    reference = plain.predict(MatrixBatchGenerator(X), 2 * n)
    assert set(np.unique(X)) == {0, 1}
    for kind, data in ((Mixed, X), (Double, X.astype(np.uint8)), (Scaled, X)):
        model = kind({'background': 1.0}, device='cpu')
        predicted = model.predict(MatrixBatchGenerator(data), 2 * n)
        assert not np.allclose(predicted, reference, atol=1e-5), kind.__name__  # it matters
        vep, diff = vep_predictions(tmp_path, model, vcf, genome, n, kind.__name__)
        np.testing.assert_allclose(vep, predicted, atol=1e-6, err_msg=kind.__name__)
        np.testing.assert_allclose(diff, predicted[n:] - predicted[:n], atol=1e-6)


def test_vep_refuses_a_model_that_is_not_of_one_hot_dna(tmp_path, genome, cli):
    """An MLP over 8 features takes (n, 4, 8) windows without an error (its Linear runs along
    the last axis), but returns (n, 4, 2): refused with the shapes, not scored as 8 tasks."""
    fasta, chroms = genome
    definition = tmp_path / 'mlp_def.py'
    definition.write_text(textwrap.dedent('''
        import torch
        from torch import nn
        from base_model import ClassificationModel

        class Model(ClassificationModel):
            def init_model(self):
                network = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
                super().init_model(network, torch.optim.SGD(network.parameters(), lr=0.1))

        def get_config():
            return {}
    '''))
    from dlutil.definition import load_module
    model = load_module(str(definition)).Model({}, device='cpu')
    vcf = write_vcf(tmp_path / 'calls.vcf', variant_rows(chroms['chr1'])[:3])
    with pytest.raises(ValueError, match=r'--vep needs a model of one-hot DNA, shape \(n, 4, L\) '
                                         r'or \(n, 4, 1, L\).*windows of shape \(2, 4, 8\) to '
                                         r'outputs of shape \(2, 4, 2\).*Linear\(in_features=8'):
        score_vcf(model, str(vcf), str(fasta), str(tmp_path / 'x.h5'), length=8, progress=False)
    write_checkpoint(tmp_path / 'mlp.pt', model, {})
    (tmp_path / 'data').mkdir()
    code, err = cli('--model', definition, '--data', tmp_path / 'data', '--result',
                    tmp_path / 'res', '--vep', vcf, '--genome', fasta, '--checkpoint',
                    tmp_path / 'mlp.pt', '--seq-len', 8, '--cpu')
    assert code == 1 and 'Traceback' not in err
    assert 'needs a model of one-hot DNA' in err and '(2, 4, 2)' in err
    assert not (tmp_path / 'res' / 'vep' / 'calls.h5').exists()


# -- log-odds from logits ------------------------------------------------------------------------
def direct_log_odds(logits):
    """log(p / (1 - p)) of a softmax, with 60 significant digits (mpmath): the reference.
    p / (1 - p) is exp(l_k) over the sum of the other exp(l_j), which 1 - p would lose."""
    import mpmath
    with mpmath.workdps(60):
        out = np.zeros(logits.shape)
        for i, row in enumerate(logits):
            e = [mpmath.exp(mpmath.mpf(float(v))) for v in row]
            for k in range(len(row)):
                out[i, k] = float(mpmath.log(e[k] / mpmath.fsum(e[:k] + e[k + 1:])))
    return out


def test_log_odds_of_a_softmax_are_exact_and_antisymmetric():
    rng = np.random.default_rng(0)
    binary = np.concatenate([rng.normal(0, 3, (50, 2)), [[9.0, 0.0], [30.0, -5.0], [0, 1e-9]]])
    odds = log_odds_of_logits(binary, 'softmax')
    np.testing.assert_array_equal(odds[:, 1], -odds[:, 0])
    np.testing.assert_array_equal(odds[:, 0], binary[:, 0] - binary[:, 1])
    many = np.concatenate([rng.normal(0, 4, (40, 5)),
                           [[20, 0, 0, 0, 0], [-800, 0, 800, 1, 2], [50, 49.5, -3, 0, 0]]])
    np.testing.assert_allclose(log_odds_of_logits(many, 'softmax'), direct_log_odds(many),
                               rtol=1e-12, atol=1e-12)
    # near p = 1, through float32 probabilities the log-odds were off by about 1e-4 and more
    p = torch.softmax(torch.tensor(binary[-3:-2], dtype=torch.float32), 1).numpy()
    assert abs((np.log(p) - np.log1p(-p))[0, 0] - 9.0) > 1e-4
    assert log_odds_of_logits(binary[-3:-2], 'softmax')[0, 0] == 9.0
    # independent tasks: the logit itself
    np.testing.assert_array_equal(log_odds_of_logits(many, 'sigmoid'), many)
    with pytest.raises(ValueError, match='a softmax over 1 class has no log-odds'):
        log_odds_of_logits(np.zeros((3, 1)), 'softmax')
