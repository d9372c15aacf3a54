"""-p: predictions written with the names (and chrom/start/end) of their rows, from prepare's output."""
import csv
import logging

import h5py
import numpy as np
import pytest

from batch_generator import H5pyBatchGenerator, MatrixBatchGenerator
from dlutil import predictions
from dlutil.prepare import sequences as prepare

LENGTH = 40  # the conftest classifier pools over 35 positions after a width-6 kernel


def write_fasta(path, records):
    path.write_text(''.join(f'>{name} description\n{seq}\n' for name, seq in records))
    return path


def random_seqs(n, seed):
    rng = np.random.default_rng(seed)
    return [''.join(rng.choice(list('ACGT'), LENGTH)) for _ in range(n)]


def read_h5(path):
    with h5py.File(path, 'r') as f:
        return {key: (f[key].asstr()[:] if f[key].dtype.kind == 'O' else f[key][()])
                for key in f}


def read_tsv(path):
    with open(path, newline='') as handle:
        return list(csv.DictReader(handle, delimiter='\t'))


@pytest.fixture(scope='module')
def searched(tmp_path_factory):
    """A finished one-configuration search (R = 1) on small conftest-style data: its result
    folder (the tests predict into it), the def.py and the data folder."""
    from conftest import CLASSIFIER_DEF, onehot_motif_data, write_h5
    from dlutil import cli
    root = tmp_path_factory.mktemp('names')
    (root / 'data').mkdir()
    for name, n, seed in (('train', 96, 0), ('valid', 48, 1)):
        write_h5(root / 'data' / f'{name}.h5', *onehot_motif_data(n, seed=seed))
    (root / 'def.py').write_text(CLASSIFIER_DEF)
    assert cli.main([str(a) for a in ('-f', root / 'def.py', '-d', root / 'data', '-r',
                                      root / 'res', '-y', '-ep', 1, '-bs', 32, '--seed', 0,
                                      '-c')]) == 0
    return root / 'res', root / 'def.py', root / 'data'


def test_names_round_trip_from_prepare_to_predictions(cli, searched, tmp_path):
    searched, classifier_def, h5_data = searched
    # the same ten sequences in two FASTA files, in opposite orders: joined on their names,
    # the predictions must agree row for row, and differ when joined on row order
    seqs = random_seqs(10, seed=4)
    records = [(f'seq{i}', s) for i, s in enumerate(seqs)]
    for name, recs in (('fwd', records), ('rev', records[::-1])):
        fasta = write_fasta(tmp_path / f'{name}.fa', recs)
        prepare.prepare_fasta([fasta], tmp_path / name, split='none', layout='4,1,L')
        (tmp_path / name / 'all.h5').rename(h5_data / f'pred_{name}.h5')
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', searched, '-p', 'pred_fwd.h5',
                    '-p', 'pred_rev.h5', '-bs', 3, '-c')
    assert code == 0, err
    folder = searched / 'predictions'
    fwd, rev = read_h5(folder / 'pred_fwd.h5.h5'), read_h5(folder / 'pred_rev.h5.h5')
    assert list(fwd['name']) == [n for n, _ in records]
    assert list(rev['name']) == [n for n, _ in records[::-1]]
    np.testing.assert_array_equal(fwd['row'], np.arange(10))
    np.testing.assert_array_equal(fwd['prediction'], np.load(folder / 'pred_fwd.h5.npy'))
    assert fwd['prediction'].shape == (10, 2)
    by_name = dict(zip(rev['name'], rev['prediction']))
    np.testing.assert_allclose([by_name[n] for n in fwd['name']], fwd['prediction'], rtol=1e-5)
    assert not np.allclose(rev['prediction'], fwd['prediction'])  # the join is what matters

    rows = read_tsv(folder / 'pred_rev.h5.tsv')
    assert list(rows[0]) == ['row', 'name', 'prediction_0', 'prediction_1']
    assert [r['name'] for r in rows] == list(rev['name'])
    np.testing.assert_allclose([[float(r['prediction_0']), float(r['prediction_1'])]
                                for r in rows], rev['prediction'], rtol=1e-5)


def test_bed_windows_keep_chrom_start_end(cli, searched, tmp_path):
    searched, classifier_def, h5_data = searched
    rng = np.random.default_rng(0)
    genome = {'chr1': ''.join(rng.choice(list('ACGT'), 300)),
              'chr2': ''.join(rng.choice(list('ACGT'), 200))}
    write_fasta(tmp_path / 'genome.fa', genome.items())
    bed_rows = [('chr2', 50, 90, 'peak_b'), ('chr1', 100, 140, 'peak_a'),
                ('chr1', 10, 60, '.')]
    (tmp_path / 'regions.bed').write_text(''.join('\t'.join(map(str, r)) + '\n'
                                                  for r in bed_rows))
    prepare.prepare_bed(tmp_path / 'regions.bed', tmp_path / 'genome.fa', tmp_path / 'bed',
                        LENGTH, label_columns='none', split='none', layout='4,1,L')
    (tmp_path / 'bed' / 'all.h5').rename(h5_data / 'regions.h5')
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', searched, '-p', 'regions.h5',
                    '-c')
    assert code == 0, err
    out = read_h5(searched / 'predictions' / 'regions.h5.h5')
    assert list(out['name']) == ['peak_b', 'peak_a', 'chr1:10-60']
    assert list(out['chrom']) == ['chr2', 'chr1', 'chr1']
    # the windows prepare fetched: LENGTH around each interval's centre
    centres = [(s + e) // 2 for _, s, e, _ in bed_rows]
    np.testing.assert_array_equal(out['start'], [c - LENGTH // 2 for c in centres])
    np.testing.assert_array_equal(out['end'] - out['start'], LENGTH)
    rows = read_tsv(searched / 'predictions' / 'regions.h5.tsv')
    assert [(r['name'], r['chrom'], int(r['start'])) for r in rows] == \
        list(zip(out['name'], out['chrom'], out['start']))


def test_repeated_predict_keeps_every_pattern(tmp_path):
    data = tmp_path / 'data'
    (data / 'sub').mkdir(parents=True)
    for name in ('a1.h5', 'a2.h5', 'b.h5', 'sub/c.h5'):
        (data / name).write_text('')
    paths = predictions.prediction_inputs(str(data), ['a*.h5', 'sub/c.h5', 'a1.h5'])
    assert [p.split('data/')[1] for p in paths] == ['a1.h5', 'a2.h5', 'sub/c.h5']
    with pytest.raises(FileNotFoundError, match=r"--predict 'x\*': no file matches"):
        predictions.prediction_inputs(str(data), ['a*.h5', 'x*'])


def test_generators_name_their_rows(tmp_path):
    X = np.zeros((3, 4, 5), np.float32)
    assert MatrixBatchGenerator(X).row_names() is None
    named = MatrixBatchGenerator(X, names=['x', 'y', 'z'])
    assert list(named.row_names()['name']) == ['x', 'y', 'z']
    with pytest.raises(ValueError, match='X has 3 rows but names has 2'):
        MatrixBatchGenerator(X, names=['x', 'y'])
    # several files: the names concatenated in file order, as an unshuffled epoch serves rows
    for i, names in enumerate((['a', 'b'], ['c'])):
        with h5py.File(tmp_path / f'part{i}.h5', 'w') as f:
            f.create_dataset('data', data=np.zeros((len(names), 4, 5), np.float32))
            f.create_dataset('name', data=names, dtype=h5py.string_dtype())
    columns = H5pyBatchGenerator(str(tmp_path / 'part*.h5')).row_names()
    assert list(columns) == ['name'] and list(columns['name']) == ['a', 'b', 'c']
    with h5py.File(tmp_path / 'plain.h5', 'w') as f:
        f.create_dataset('data', data=X)
    assert H5pyBatchGenerator(str(tmp_path / 'plain.h5')).row_names() is None


def test_row_numbers_when_names_do_not_fit(caplog):
    unnamed = MatrixBatchGenerator(np.zeros((4, 2)))
    assert predictions.row_columns(unnamed, 4) == {}
    logger = logging.getLogger('dlutil')  # the CLI stops it propagating: listen to it directly
    logger.addHandler(caplog.handler)
    try:
        assert predictions.row_columns(MatrixBatchGenerator(np.zeros((4, 2)), names='abcd'),
                                       3, 'x.h5') == {}
        assert predictions.row_columns(MatrixBatchGenerator(np.zeros((4, 2)), names='abcd',
                                                            shuffle=True), 4, 'x.h5') == {}
    finally:
        logger.removeHandler(caplog.handler)
    assert 'x.h5: 3 predictions but the generator names 4 rows (name)' in caplog.text
    assert 'shuffles its rows' in caplog.text


def test_tsv_columns_take_class_names(tmp_path):
    predictions.write_tsv(tmp_path / 'p.tsv', np.array([[0.25, 0.75]]), {}, ['neg', 'pos'])
    assert read_tsv(tmp_path / 'p.tsv') == [{'row': '0', 'neg': '0.25', 'pos': '0.75'}]
    predictions.write_tsv(tmp_path / 'q.tsv', np.array([1.5, 2.0]), {})
    assert [r['prediction'] for r in read_tsv(tmp_path / 'q.tsv')] == ['1.5', '2']
    assert not predictions.small_enough_for_tsv(np.zeros((2, 4, 3)))
