"""--vep's scores, task and position rules, shifts and annotated VCF, each against a direct
computation with the same tiny network on windows cut from a tiny genome (with an N stretch and
variants within half a window of both chromosome ends)."""
import gzip
import textwrap

import h5py
import numpy as np
import pytest
import torch

from dlutil.sequences.onehot import encode_batch, reverse_complement
from dlutil.sequences.readers import InputError
from dlutil.variants.effects import score_vcf
from dlutil.variants.windows import shifted_windows

L = 24
VEP_DEF = textwrap.dedent('''
    import torch
    from torch import nn

    from base_model import MultiLabelModel, RegressionModel


    class Net(nn.Module):
        """A random convolution: per task its mean over the window, or the whole profile."""

        def __init__(self, tasks, profile=False):
            super().__init__()
            torch.manual_seed(0)
            self.seq_len, self.profile = 24, profile
            self.conv = nn.Conv1d(4, tasks, 5, padding=2)

        def forward(self, x):
            y = self.conv(x)
            return nn.functional.softplus(y) if self.profile else y.mean(2) * 4


    def _init(model, network):
        model.__class__.__bases__[0].init_model(
            model, network, torch.optim.SGD(network.parameters(), lr=0))


    class Model(MultiLabelModel):          # three independent probabilities
        def init_model(self):
            _init(self, Net(3))


    class Values(RegressionModel):         # three unbounded values
        def init_model(self):
            _init(self, Net(3))


    class Profile(RegressionModel):        # two tasks, a positive value per position
        def init_model(self):
            _init(self, Net(2, profile=True))


    CLASS_NAMES = ['a', 'b c', 'd']


    def get_config():
        return {}
''')


@pytest.fixture
def setup(tmp_path):
    """The def.py's models, a genome (chr1: 300 letters, N at 0-based 150-159; chr2: 50) and a
    sorted VCF: ends of chr1, a multi-allelic SNV, one beside the Ns, indels, a symbolic ALT."""
    from dlutil.definition import load_module
    rng = np.random.default_rng(1)
    chrom = ''.join(rng.choice(list('ACGT'), 300))
    chrom = chrom[:150] + 'N' * 10 + chrom[160:]
    chr2 = ''.join(rng.choice(list('ACGT'), 50))
    (tmp_path / 'genome.fa').write_text(f'>chr1\n{chrom}\n>chr2\n{chr2}\n')
    at = lambda pos, n=1: chrom[pos - 1:pos - 1 + n]  # noqa: E731
    other = {'A': 'C', 'C': 'G', 'G': 'T', 'T': 'A'}
    rows = [('chr1', 3, 'start', at(3), other[at(3)]),
            ('chr1', 100, 'multi', at(100), other[at(100)] + ',' + other[other[at(100)]]),
            ('chr1', 149, 'by_n', at(149), other[at(149)]),
            ('chr1', 200, 'ins', at(200), at(200) + 'GAT'),
            ('chr1', 230, 'del', at(230, 3), at(230)),
            ('chr1', 250, 'sv', at(250), '<DEL>'),
            ('chr1', 298, 'end', at(298), other[at(298)]),
            ('chr2', 10, 'two', chr2[9], other[chr2[9]])]
    header = ('##fileformat=VCFv4.2\n##contig=<ID=chr1,length=300>\n##contig=<ID=chr2,'
              'length=50>\n##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">\n'
              '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n')
    vcf = tmp_path / 'calls.vcf'
    vcf.write_text(header + ''.join('\t'.join(map(str, r)) + '\t50\tPASS\tDP=7\tGT\t0/1\n'
                                 for r in rows))
    (tmp_path / 'vep_def.py').write_text(VEP_DEF)
    module = load_module(str(tmp_path / 'vep_def.py'))
    alleles = [(c, p, r, a) for c, p, _, r, alts in rows for a in alts.split(',') if a[0] != '<']
    return {'module': module, 'vcf': vcf, 'genome': tmp_path / 'genome.fa', 'rows': rows,
            'chroms': {'chr1': chrom, 'chr2': chr2}, 'alleles': alleles, 'tmp': tmp_path}


def model(setup, name='Model'):
    return getattr(setup['module'], name)({}, device='cpu')


def windows(setup, shifts=0, iupac='uniform'):
    """One-hot ref and alt windows of every scorable allele: (n, 2 * shifts + 1, 4, L) each."""
    refs, alts = [], []
    for chrom, pos, ref, alt in setup['alleles']:
        seq = setup['chroms'][chrom]
        r, a, _ = shifted_windows(lambda i, j: seq[i:j].encode(), len(seq), pos - 1, ref, alt,
                                  L, shifts)
        refs.append(encode_batch(r, iupac))
        alts.append(encode_batch(a, iupac))
    return np.stack(refs), np.stack(alts)


def outputs(m, x, strands=False):
    """The network's outputs for (n, k, 4, L) windows, float64, averaged over k (the shifts)."""
    n, k = x.shape[:2]
    with torch.no_grad():
        t = torch.from_numpy(x.reshape(n * k, 4, L))
        y = m.network(t).double()
        if strands:
            y = (y + m.network(reverse_complement(t)).double()) / 2
    return y.reshape(n, k, *y.shape[1:]).mean(1).numpy()


def run(setup, m, name, **kwargs):
    out = setup['tmp'] / 'vep' / f'{name}.h5'
    score_vcf(m, str(setup['vcf']), str(setup['genome']), str(out), progress=False, **kwargs)
    with h5py.File(out) as f:
        data = {key: f[key][:] for key in f}
        data.update({f'attr:{key}': f.attrs[key] for key in f.attrs})
    return data


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_each_score_is_the_direct_computation_and_n_windows_are_scored(setup):
    m = model(setup)
    got = run(setup, m, 'all', scores=['diff', 'log_fold_change', 'ratio', 'log_odds'],
              batch_size=3)
    x_ref, x_alt = windows(setup)
    z_ref, z_alt = outputs(m, x_ref), outputs(m, x_alt)
    p_ref, p_alt = sigmoid(z_ref), sigmoid(z_alt)
    np.testing.assert_allclose(got['pred_ref'], p_ref, rtol=1e-5)
    np.testing.assert_allclose(got['pred_alt'], p_alt, rtol=1e-5)
    np.testing.assert_allclose(got['diff'], p_alt - p_ref, atol=1e-6)
    np.testing.assert_allclose(got['log_fold_change'], np.log2(p_alt / p_ref), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(got['ratio'], p_alt / p_ref, rtol=1e-5)
    np.testing.assert_allclose(got['log_odds'], z_alt - z_ref, rtol=1e-5, atol=1e-6)
    assert got['log_odds'].dtype == np.float64 and got['diff'].dtype == np.float32
    assert list(got['attr:scores']) == ['diff', 'log_fold_change', 'ratio', 'log_odds']
    assert np.abs(got['diff']).max() > 1e-3  # the variants change the outputs
    # the windows of the chromosome's ends and beside the Ns hold N (0.25 in all four rows)
    ids = [s.decode() for s in got['id']]
    assert ids == ['start', 'multi', 'multi', 'by_n', 'ins', 'del', 'end', 'two']
    n_columns = (x_ref[:, 0] == 0.25).all(1).sum(1)
    assert [ids[i] for i in np.flatnonzero(n_columns)] == ['start', 'by_n', 'end', 'two']
    assert np.isfinite(got['log_odds']).all()


def test_strand_averaging_and_zero_columns_take_windows_with_n(setup):
    m = model(setup)
    got = run(setup, m, 'strands', strand_average=True)
    x_ref, x_alt = windows(setup)
    np.testing.assert_allclose(got['pred_alt'], sigmoid(outputs(m, x_alt, strands=True)),
                               rtol=1e-5)
    # N as all-zero columns, as fasta_data and pysster encode it (--vep-iupac zeros)
    got = run(setup, m, 'zeros', iupac='zeros')
    x_ref, x_alt = windows(setup, iupac='zeros')
    assert (x_ref[0, 0, :, 0] == 0).all()  # the start's window runs off the chromosome
    np.testing.assert_allclose(got['pred_ref'], sigmoid(outputs(m, x_ref)), rtol=1e-5)
    assert not np.allclose(got['pred_ref'], run(setup, m, 'uniform')['pred_ref'], atol=1e-4)


def test_values_use_the_pseudocount_and_have_no_log_odds(setup):
    m = model(setup, 'Values')
    got = run(setup, m, 'values', scores=['log_fold_change', 'ratio'], pseudocount=0.5)
    x_ref, x_alt = windows(setup)
    v_ref, v_alt = outputs(m, x_ref), outputs(m, x_alt)
    ratio = (v_alt + 0.5) / (v_ref + 0.5)
    ratio[(v_alt <= -0.5) | (v_ref <= -0.5)] = np.nan  # a value at or below -c: undefined
    assert np.isnan(ratio).any() and np.isfinite(ratio).any()
    with np.errstate(invalid='ignore'):
        np.testing.assert_allclose(got['log_fold_change'], np.log2(ratio), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got['ratio'], ratio, rtol=1e-5)
    assert 'log_odds' not in got  # the default for values: diff only
    assert list(run(setup, m, 'default')['attr:scores']) == ['diff']
    with pytest.raises(ValueError, match='log_odds needs probabilities'):
        run(setup, m, 'odds', scores=['log_odds'])


@pytest.mark.parametrize('rule', ['sum', 'mean', 'max', 'min', 'meanabs', 'maxabs'])
def test_aggregation_over_tasks(setup, rule):
    m = model(setup)
    x_ref, x_alt = windows(setup)
    diff = sigmoid(outputs(m, x_alt)) - sigmoid(outputs(m, x_ref))
    got = run(setup, m, rule, aggregate_tasks=rule)
    expected = {'sum': diff.sum(1), 'mean': diff.mean(1), 'max': diff.max(1),
                'min': diff.min(1), 'meanabs': np.abs(diff).mean(1),
                'maxabs': diff[np.arange(len(diff)), np.abs(diff).argmax(1)]}[rule]
    assert got['diff'].shape == (len(diff), 1) and got['pred_ref'].shape == (len(diff), 3)
    np.testing.assert_allclose(got['diff'][:, 0], expected, atol=1e-6)
    assert list(got['attr:tasks']) == [f'{rule}_of_tasks']
    top = (setup['tmp'] / 'vep' / f'{rule}.top.tsv').read_text().splitlines()
    assert top[0].split('\t') == ['chrom', 'pos', 'id', 'ref', 'alt', 'task', 'diff',
                                  'log_odds']
    assert {line.split('\t')[5] for line in top[1:]} == {f'{rule}_of_tasks'}


def test_maxabs_keeps_the_sign_and_skips_nan():
    from dlutil.variants.scores import reduce
    values = np.array([[1.0, np.nan, -3.0], [np.nan, np.nan, np.nan], [0.5, 2.0, -1.0]])
    np.testing.assert_array_equal(reduce(values, 'maxabs', 1), [-3.0, np.nan, 2.0])


def test_positional_outputs_need_a_rule(setup):
    m = model(setup, 'Profile')
    with pytest.raises(ValueError, match='scored with --vep-aggregate-positions'):
        run(setup, m, 'refused')
    x_ref, x_alt = windows(setup)
    y_ref, y_alt = outputs(m, x_ref), outputs(m, x_alt)  # (n, 2, L)
    got = run(setup, m, 'sum', aggregate_positions='sum', scores=['diff', 'log_fold_change'])
    np.testing.assert_allclose(got['pred_ref'], y_ref.sum(2), rtol=1e-5)
    np.testing.assert_allclose(got['diff'], y_alt.sum(2) - y_ref.sum(2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got['log_fold_change'],
                               np.log2((y_alt.sum(2) + 1) / (y_ref.sum(2) + 1)), rtol=1e-5,
                               atol=1e-6)
    got = run(setup, m, 'maxabs', aggregate_positions='maxabs')
    d = y_alt - y_ref
    rows, tasks = np.indices(d.shape[:2])
    np.testing.assert_allclose(got['diff'], d[rows, tasks, np.abs(d).argmax(2)], atol=1e-5)
    np.testing.assert_allclose(got['pred_ref'], y_ref.mean(2), rtol=1e-5)
    with pytest.raises(ValueError, match='log_odds is for one probability'):
        run(setup, model(setup), 'x', aggregate_positions='sum', scores=['log_odds'])


def test_shifts_average_the_outputs_of_shifted_windows(setup):
    seq = setup['chroms']['chr1']
    padded = 'N' * 40 + seq + 'N' * 40
    for pos in (3, 100, 298):  # SNVs: window [p - L//2 + s, …), the allele at L//2 - s
        refs, alts, _ = shifted_windows(lambda i, j: seq[i:j].encode(), len(seq), pos - 1,
                                        seq[pos - 1], 'T', L, 2)
        for s, (ref, alt) in zip(range(-2, 3), zip(refs, alts)):
            start = pos - 1 - L // 2 + s + 40
            assert ref.decode() == padded[start:start + L]
            assert alt.decode() == padded[start:start + L // 2 - s] + 'T' + \
                padded[start + L // 2 - s + 1:start + L]
    m = model(setup)
    got = run(setup, m, 'shifts', shifts=2, batch_size=2)  # 2 variants: 20 windows a batch
    x_ref, x_alt = windows(setup, shifts=2)
    np.testing.assert_allclose(got['pred_ref'], sigmoid(outputs(m, x_ref)), rtol=1e-5)
    np.testing.assert_allclose(got['log_odds'], outputs(m, x_alt) - outputs(m, x_ref),
                               rtol=1e-5, atol=1e-6)
    unshifted = run(setup, m, 'none')
    assert not np.allclose(got['pred_ref'], unshifted['pred_ref'], atol=1e-4)
    assert got['attr:shifts'] == 2


def test_annotated_vcf_reads_back_equal_to_the_h5(setup, cli):
    from cyvcf2 import VCF
    from dlutil.search import results
    m = model(setup)
    results.save_checkpoint(str(setup['tmp'] / 'best.pt'),
                            {'model': m.state_dict(), 'epoch': 1, 'config': {}})
    (setup['tmp'] / 'data').mkdir()
    base = ['--model', setup['tmp'] / 'vep_def.py', '--data', setup['tmp'] / 'data',
            '--checkpoint', setup['tmp'] / 'best.pt', '--genome', setup['genome'], '--cpu']
    code, err = cli(*base, '--result', setup['tmp'] / 'res', '--vep', setup['vcf'],
                    '--vep-score', 'diff,log_odds', '--vep-score', 'ratio', '-bs', 2)
    assert code == 0, err
    vep = setup['tmp'] / 'res' / 'vep'
    with h5py.File(vep / 'calls.h5') as f:
        h5 = {key: f[key][:] for key in ('id', 'diff', 'log_odds', 'ratio')}
    tasks = {'a': 0, 'b_c': 1, 'd': 2}  # CLASS_NAMES, 'b c' made an INFO ID
    reader = VCF(str(vep / 'calls.vcf.gz'))
    infos = {h['ID']: h for h in reader.header_iter() if h['HeaderType'] == 'INFO'}
    assert set(infos) == {'DP'} | {f'dlutil_{s}_{t}' for s in ('diff', 'log_odds', 'ratio')
                                   for t in tasks}
    assert infos['dlutil_diff_b_c']['Number'] == 'A' and infos['dlutil_diff_a']['Type'] == 'Float'
    assert 'diff of b c' in infos['dlutil_diff_b_c']['Description']
    assert 'vep_def.py' in infos['dlutil_diff_a']['Description']
    assert reader.samples == []  # the sites, not the genotypes
    records = list(reader)
    assert [r.ID for r in records] == [row[2] for row in setup['rows']]  # every record, in order
    ids = [s.decode() for s in h5['id']]
    for record in records:
        assert record.INFO.get('DP') == 7  # the input's INFO is kept
        rows = [i for i, name in enumerate(ids) if name == record.ID]
        if not rows:  # the symbolic allele: copied without scores
            assert record.INFO.get('dlutil_diff_a') is None
            continue
        for score in ('diff', 'log_odds', 'ratio'):
            for task, column in tasks.items():
                value = np.atleast_1d(record.INFO.get(f'dlutil_{score}_{task}'))
                np.testing.assert_array_equal(value.astype(np.float32),
                                              h5[score][rows, column].astype(np.float32))
    # bgzipped and indexed: a region query finds the variant beside the Ns
    assert [r.ID for r in VCF(str(vep / 'calls.vcf.gz'))('chr1:140-160')] == ['by_n']
    with open(vep / 'calls.vcf.gz', 'rb') as f:
        assert f.read(4) == b'\x1f\x8b\x08\x04'  # BGZF: gzip with the extra field
    # scoring the annotated VCF again replaces the fields it writes, keeps the others
    code, err = cli(*base, '--result', setup['tmp'] / 'again', '--vep', vep / 'calls.vcf.gz',
                    '--vep-score', 'diff')
    assert code == 0, err
    text = gzip.open(setup['tmp'] / 'again' / 'vep' / 'calls.vcf.gz', 'rt').read()
    assert text.count('ID=dlutil_diff_a,') == 1 and text.count('dlutil_diff_a=') == 7
    assert text.count('ID=dlutil_ratio_a,') == 1 and text.count('dlutil_ratio_a=') == 7


def test_vep_options_are_checked(setup, cli):
    base = ['--model', setup['tmp'] / 'vep_def.py', '--data', setup['tmp'],
            '--result', setup['tmp'] / 'res']
    for flags, message in (
            (['--vep', setup['vcf'], '--genome', setup['genome'], '--vep-score', 'diff,lfc'],
             '--vep-score lfc: expected some of diff, log_fold_change, ratio, log_odds'),
            (['--vep-shifts', '2'], '--vep-shifts: for --vep'),
            (['--vep', setup['vcf'], '--genome', setup['genome'], '--vep-shifts', '-1'],
             '--vep-shifts must be at least 0')):
        with pytest.raises(SystemExit) as exit_info:
            cli(*base, *flags)
        assert exit_info.value.code == 2


def test_streaming_gives_the_same_files_for_any_batch(setup, monkeypatch):
    from dlutil.variants import effects
    m = model(setup)
    run(setup, m, 'big', batch_size=64)
    monkeypatch.setattr(effects, 'RECORDS_PER_BATCH', 2)  # records handed on 2 at a time
    run(setup, m, 'small', batch_size=1)
    vep = setup['tmp'] / 'vep'
    big, small = (gzip.open(vep / f'{name}.vcf.gz', 'rt').read() for name in ('big', 'small'))
    assert big == small and big.count('\n') == 12 + 8  # header lines, records
    assert (vep / 'big.top.tsv').read_text() == (vep / 'small.top.tsv').read_text()


def test_a_bad_record_is_named(setup):
    text = setup['vcf'].read_text().replace('chr1\t200\t', 'chr1\tx200\t')
    setup['vcf'].write_text(text)
    with pytest.raises(InputError, match=r"calls.vcf, line \d+ \(chr1:x200\): POS 'x200' is not a "
                                         r"position"):
        run(setup, model(setup), 'bad')
    assert not [p for p in (setup['tmp'] / 'vep').iterdir() if 'bad' in p.name]  # no temporary
