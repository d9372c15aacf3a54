"""Batch generators: coverage, shuffling, resumable state, streaming memory, bad files."""
import tracemalloc

import h5py
import numpy as np
import pytest

from batch_generator import H5pyBatchGenerator, MatrixBatchGenerator
from conftest import write_h5


def rows_of(generator, batch_size=None):
    xs = [x for x, _ in generator.iter_batches(batch_size)]
    return np.concatenate(xs)


def test_matrix_batches_cover_every_row_in_order():
    X = np.arange(10)[:, None] * np.ones((1, 3))
    gen = MatrixBatchGenerator(X, np.arange(10), batch_size=4)
    batches = list(gen)
    assert [len(x) for x, _ in batches] == [4, 4, 2] and len(gen) == 3
    assert np.array_equal(np.concatenate([y for _, y in batches]), np.arange(10))


def test_matrix_shuffle_differs_by_epoch_and_state_replays_it():
    gen = MatrixBatchGenerator(np.arange(50), np.arange(50), batch_size=7, shuffle=True, seed=3)
    first = rows_of(gen)
    state = gen.get_state()
    second = rows_of(gen)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert not np.array_equal(first, second)
    gen.set_state(state)
    assert np.array_equal(rows_of(gen), second)
    gen.reseed(3)
    assert np.array_equal(rows_of(gen), first)


def test_no_labels_yields_x_alone_and_none_batch_size_is_everything():
    gen = MatrixBatchGenerator(np.zeros((5, 2)))
    batches = list(gen)
    assert len(batches) == 1 and batches[0].shape == (5, 2)
    assert [b.shape[0] for b in gen.iter_batches(2)] == [2, 2, 1]


def test_dict_inputs():
    gen = MatrixBatchGenerator({'a': np.arange(6), 'b': np.arange(6) * 2}, np.arange(6), 4)
    x, y = next(iter(gen))
    assert np.array_equal(x['b'], 2 * y)


def test_train_val_split_is_disjoint_and_seeded():
    X, Y = np.arange(100), np.arange(100)
    train, val = MatrixBatchGenerator.get_train_val_generator(X, Y, 0.2, 16)
    assert train.n_samples == 80 and val.n_samples == 20 and train.shuffle and not val.shuffle
    seen = np.concatenate([rows_of(train), rows_of(val)])
    assert sorted(seen) == list(range(100))
    _, val2 = MatrixBatchGenerator.get_train_val_generator(X, Y, 0.2, 16)
    assert np.array_equal(rows_of(val), rows_of(val2))


@pytest.mark.parametrize('kwargs, match', [
    (dict(X=np.zeros(3), Y=np.zeros(4)), '3 rows but Y has 4'),
    (dict(X=np.zeros(3), batch_size=0), 'batch_size'),
])
def test_matrix_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MatrixBatchGenerator(**kwargs)


def test_bad_val_ratio():
    with pytest.raises(ValueError, match='val_ratio'):
        MatrixBatchGenerator.get_train_val_generator(np.zeros(10), np.zeros(10), 1.5, 2)


@pytest.fixture
def h5_files(tmp_path):
    """Three files of 100, 37 and 263 rows; row i holds the value i everywhere."""
    sizes, start, paths = [100, 37, 263], 0, []
    for k, n in enumerate(sizes):
        index = np.arange(start, start + n)
        X = np.broadcast_to(index[:, None, None, None], (n, 4, 1, 5)).astype(np.float32)
        path = tmp_path / f'part{k}.h5'
        write_h5(path, X, index.astype(np.int64), chunks=(16, 4, 1, 5))
        paths.append(path)
        start += n
    return tmp_path


def test_h5_concatenates_sorted_files(h5_files):
    gen = H5pyBatchGenerator(str(h5_files / 'part*.h5'), batch_size=64)
    assert gen.n_samples == 400 and len(gen) == 7
    ys = np.concatenate([y for _, y in gen])
    assert np.array_equal(ys, np.arange(400))
    xs = np.concatenate([x for x, _ in gen])
    assert np.array_equal(xs[:, 0, 0, 0], np.arange(400))


def test_h5_shuffled_epochs_visit_every_row_once_in_new_orders(h5_files):
    gen = H5pyBatchGenerator(str(h5_files / 'part*.h5'), batch_size=30, shuffle=True,
                             buffer_mb=0.002)  # a window of ~60 rows: many windows per epoch
    epochs = []
    for _ in range(3):
        batches = list(gen)
        assert [len(y) for _, y in batches] == [30] * 13 + [10]  # only the last batch is short
        ys = np.concatenate([y for _, y in batches])
        xs = np.concatenate([x for x, _ in batches])
        assert np.array_equal(xs[:, 2, 0, 3], ys)  # rows keep their labels
        assert sorted(ys) == list(range(400))
        epochs.append(ys)
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])
    # shuffling is not just a rotation of blocks: neighbours get separated
    assert np.mean(np.abs(np.diff(epochs[0])) == 1) < 0.5


def test_h5_state_replays_an_epoch(h5_files):
    gen = H5pyBatchGenerator(str(h5_files / 'part*.h5'), 50, shuffle=True, buffer_mb=0.002)
    list(gen)
    state = gen.get_state()
    expected = np.concatenate([y for _, y in gen])
    other = H5pyBatchGenerator(str(h5_files / 'part*.h5'), 50, shuffle=True, buffer_mb=0.002)
    other.set_state(state)
    assert np.array_equal(np.concatenate([y for _, y in other]), expected)


def test_h5_batch_size_none_evaluates_in_batches(h5_files):
    gen = H5pyBatchGenerator(str(h5_files / 'part0.h5'))
    assert [len(y) for _, y in gen.iter_batches(40)] == [40, 40, 20]
    assert [len(y) for _, y in gen] == [100]


def test_h5_process_x_y_and_unlabelled_files(tmp_path):
    write_h5(tmp_path / 'x.h5', np.ones((10, 3), np.float32))
    gen = H5pyBatchGenerator(str(tmp_path / 'x.h5'), 4, process_x_y=lambda x, y: (x * 2, y))
    batches = list(gen)
    assert not gen.has_labels and [b.shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert np.all(batches[0] == 2)


def test_h5_streaming_memory_stays_bounded(tmp_path):
    n = 40_000  # 40k rows of 4×1×101 float32: a 65 MB file
    with h5py.File(tmp_path / 'big.h5', 'w') as f:
        data = f.create_dataset('data', (n, 4, 1, 101), np.float32, chunks=(512, 4, 1, 101))
        label = f.create_dataset('label', (n,), np.float32, chunks=(512,))
        for start in range(0, n, 8192):
            stop = min(n, start + 8192)
            data[start:stop] = 1.0
            label[start:stop] = np.arange(start, stop)
    gen = H5pyBatchGenerator(str(tmp_path / 'big.h5'), 256, shuffle=True, buffer_mb=4)
    tracemalloc.start()
    total = 0
    for x, y in gen:
        total += len(y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == n
    assert peak < 20 * 2 ** 20, f'peak {peak / 2**20:.1f} MiB for a 65 MB file and 4 MiB window'


def test_h5_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='no file matches'):
        H5pyBatchGenerator(str(tmp_path / 'nothing*.h5'))
    (tmp_path / 'bad.h5').write_text('not hdf5')
    with pytest.raises(ValueError, match=r'bad\.h5: not a readable HDF5 file'):
        H5pyBatchGenerator(str(tmp_path / 'bad.h5'))
    with h5py.File(tmp_path / 'nodata.h5', 'w') as f:
        f['X'] = np.zeros(3)
    with pytest.raises(ValueError, match=r"nodata\.h5: HDF5 file has no dataset \"data\".*'X'"):
        H5pyBatchGenerator(str(tmp_path / 'nodata.h5'))
    with h5py.File(tmp_path / 'mismatch.h5', 'w') as f:
        f['data'] = np.zeros((3, 2))
        f['label'] = np.zeros(4)
    with pytest.raises(ValueError, match=r'mismatch\.h5: "data" has 3 rows but "label" has 4'):
        H5pyBatchGenerator(str(tmp_path / 'mismatch.h5'))
    write_h5(tmp_path / 'a1.h5', np.zeros((3, 2)), np.zeros(3))
    write_h5(tmp_path / 'a2.h5', np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(ValueError, match=r'a2\.h5: "data" rows have shape \(5,\)'):
        H5pyBatchGenerator(str(tmp_path / 'a*.h5'))


def test_reverse_complement_augmentation_flips_half_the_rows(tmp_path):
    rng = np.random.default_rng(0)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (200, 9))].transpose(0, 2, 1)  # (n, 4, 9)
    gen = MatrixBatchGenerator(X, np.arange(200), 50, reverse_complement=True)
    xs, ys = zip(*gen)
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    rc = X[:, ::-1, ::-1]
    same = np.all(xs == X[ys], axis=(1, 2))
    flipped = np.all(xs == rc[ys], axis=(1, 2))
    assert np.all(same | flipped) and 60 < flipped.sum() < 140
    again = np.concatenate([x for x, _ in gen])
    assert not np.array_equal(again, xs)  # drawn afresh each epoch
    write_h5(tmp_path / 'd.h5', X[:, :, None, :], np.arange(200))
    h5 = H5pyBatchGenerator(str(tmp_path / 'd.h5'), 64, reverse_complement=True)
    hx, hy = map(np.concatenate, zip(*h5))
    assert np.all(np.all(hx[:, :, 0] == X[hy], axis=(1, 2))
                  | np.all(hx[:, :, 0] == rc[hy], axis=(1, 2)))
    with pytest.raises(ValueError, match='reverse_complement needs one-hot DNA'):
        MatrixBatchGenerator(np.zeros((5, 3)), reverse_complement=True)


def test_h5_batches_carry_the_class_balance_of_a_file_sorted_by_class(tmp_path):
    """A file written class by class (as ``prepare --one-per-class`` did): every shuffled batch's
    positive share must vary like a binomial draw of its rows, not like a run of blocks."""
    n, batch, p = 24_000, 64, 0.3
    labels = (np.arange(n) >= n * (1 - p)).astype(np.float32)  # 70 % negatives, then positives
    write_h5(tmp_path / 'sorted.h5', np.zeros((n, 4), np.float32), labels, chunks=(16, 4))
    gen = H5pyBatchGenerator(str(tmp_path / 'sorted.h5'), batch, shuffle=True, buffer_mb=0.06)
    shares = []
    for _ in range(2):
        shares += [y.mean() for _, y in gen if len(y) == batch]
    shares = np.array(shares)
    binomial = p * (1 - p) / batch  # variance of a batch of rows drawn at random
    # a window holds ~3000 rows in ~200 blocks of one 16-row chunk: the window's own share adds
    # about 64/200 of a binomial to each batch (1.1-1.3 x measured over seeds); before, a window
    # of 8 blocks made it 7.5 x
    assert shares.var() < 2 * binomial, (shares.var(), binomial)
    assert np.all(np.abs(shares - p) < 6 * np.sqrt(2 * binomial))
    assert abs(shares.mean() - p) < 0.01


@pytest.mark.parametrize('shuffle', [False, True])
def test_one_window_reader_gives_every_row_once_with_bounded_windows(shuffle):
    """The reader both HDF5 generators share: blocks read a window at a time, a partial batch
    carried into the next window, only the last batch of a pass short."""
    from dlutil.data.windows import window_batches
    data = np.arange(1000)
    blocks = [(start, min(start + 16, 1000)) for start in range(0, 1000, 16)]
    reads = []

    def read(take, carry):
        x = np.concatenate([data[a:b] for a, b in take])
        reads.append(len(take))
        return (x, -x) if carry is None else (np.concatenate([carry[0], x]),
                                              np.concatenate([carry[1], -x]))

    batches = list(window_batches(blocks, read, 48, 100, np.random.default_rng(0), shuffle))
    rows = np.concatenate([x for x, _ in batches])
    assert sorted(rows) == list(range(1000))  # every row once
    assert all((y == -x).all() for x, y in batches)  # labels travel with their rows
    assert [len(x) for x, _ in batches[:-1]] == [48] * (len(batches) - 1)
    assert len(batches[-1][0]) == 1000 - 48 * (len(batches) - 1)
    assert max(reads) <= 7  # about 100 rows a window: never the whole file
    assert (list(rows) == list(range(1000))) != shuffle
    # counted in blocks, the carry not counted: windows of exactly 4 of the 63 blocks
    reads.clear()
    list(window_batches(blocks, read, 48, 4, weight=lambda block: 1, carry_counts=False))
    assert reads == [4] * 15 + [3]
