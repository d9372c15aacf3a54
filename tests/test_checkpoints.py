"""--keep-checkpoints: what is on disk after a search, and that promotion, -e and -p still work."""
import json
import os

import numpy as np
import pytest
import torch

from dlutil.search import checkpoints, results
from dlutil.search.brackets import BracketState
from dlutil.search.schedule import PlannedBracket


def files(result):
    """``{trial: sorted checkpoint names}``."""
    trials = result / 'trials'
    return {t: sorted(n for n in os.listdir(trials / t) if n.endswith('.pt'))
            for t in sorted(os.listdir(trials))}


def load(path):
    return torch.load(path, weights_only=True)


@pytest.fixture(scope='module')
def searches(tmp_path_factory, classifier_def_text, h5_module_data):
    """The same search (R = 3: brackets of 3 → 1 and 2 trials) under each policy."""
    from dlutil import cli
    base = tmp_path_factory.mktemp('keep')
    definition = base / 'def.py'
    definition.write_text(classifier_def_text)
    out = {}
    for policy in ('all', 'best', 'none'):
        result = base / policy
        code = cli.main([str(a) for a in ('-f', definition, '-d', h5_module_data, '-r', result,
                                          '-y', '-e', '-p', 'test_pred_a.h5', '-ep', 3, '-bs', 32,
                                          '--seed', 0, '-c', '--threads', 1,
                                          '--keep-checkpoints', policy)])
        assert code == 0
        out[policy] = result
    return out


@pytest.fixture(scope='module')
def classifier_def_text():
    from conftest import CLASSIFIER_DEF
    return CLASSIFIER_DEF


@pytest.fixture(scope='module')
def h5_module_data(tmp_path_factory):
    from conftest import onehot_motif_data, write_h5
    data = tmp_path_factory.mktemp('data')
    for name, n, seed in (('train', 96, 0), ('valid', 48, 1), ('test', 48, 2),
                          ('test_pred_a', 20, 3)):
        X, y = onehot_motif_data(n, seed=seed)
        write_h5(data / f'{name}.h5', X, None if name == 'test_pred_a' else y)
    return data


def test_all_keeps_every_checkpoint(searches):
    assert set(map(tuple, files(searches['all']).values())) == {('best.pt', 'last.pt')}
    for trial in files(searches['all']):
        assert 'optimizer' in load(searches['all'] / 'trials' / trial / 'last.pt')['model']


def test_best_keeps_the_best_weights_alone(searches):
    kept, full = searches['best'], searches['all']
    assert set(map(tuple, files(kept).values())) == {('best.pt',)}
    # the same search: promotion resumed the survivor, and the trimmed files hold the same
    # best-epoch weights as the untouched ones
    assert (kept / 'search.csv').read_text() == (full / 'search.csv').read_text()
    for trial in files(kept):
        slim, whole = (load(r / 'trials' / trial / 'best.pt') for r in (kept, full))
        assert set(slim['model']) == {'network'} and 'rng' not in slim
        assert slim['epoch'] == whole['epoch'] and slim['config'] == whole['config']
        for name, tensor in whole['model']['network'].items():
            assert torch.equal(slim['model']['network'][name], tensor), (trial, name)
    # -e and -p used them
    for name in ('test_result.json', 'best.json'):
        assert json.loads((kept / name).read_text()) == json.loads((full / name).read_text())
    np.testing.assert_array_equal(np.load(kept / 'predictions' / 'test_pred_a.h5.npy'),
                                  np.load(full / 'predictions' / 'test_pred_a.h5.npy'))
    # and smaller than the two full checkpoints a trial had
    usage = {p: checkpoints.disk_usage(searches[p])['checkpoints'] for p in searches}
    assert usage['none'] < usage['best'] < usage['all'] / 2


def test_none_keeps_only_the_best_trials_weights(searches):
    result = searches['none']
    best = json.loads((result / 'best.json').read_text())['trial']
    assert {t: names for t, names in files(result).items() if names} == {best: ['best.pt']}
    assert (result / 'test_result.json').read_text() == \
        (searches['all'] / 'test_result.json').read_text()
    assert (result / 'predictions' / 'test_pred_a.h5.h5').exists()


def write_checkpoint(store, trial, epoch, best_epoch):
    state = {'model': {'network': {'w': torch.full((2,), float(epoch))},
                       'optimizer': {'state': {}}}, 'epoch': epoch, 'config': {},
             'rng': {}, 'generator': {}, 'history': [], 'best': {'epoch': best_epoch}}
    results.save_checkpoint(store.trial_file(trial, 'last.pt'), state)
    if best_epoch == epoch:
        results.link_checkpoint(store.trial_file(trial, 'last.pt'),
                                store.trial_file(trial, 'best.pt'))


@pytest.mark.parametrize('policy', ['best', 'none'])
def test_survivors_keep_last_pt_while_their_bracket_runs(tmp_path, policy):
    store = results.ResultStore(tmp_path)
    state = BracketState(PlannedBracket(0, 0, 2, 0, (9, 3, 1), (1, 3, 9)))
    keeper = checkpoints.CheckpointKeeper(store, policy)
    for index in range(9):
        write_checkpoint(store, results.trial_id(index), 1, 1)
    keeper.release([state])  # rung 0 still running: nothing is touched
    assert all(os.path.exists(store.trial_file(results.trial_id(i), 'last.pt'))
               for i in range(9))
    for index in range(9):
        state.record(index, {'status': 'ok', 'reward': float(index)})
    assert state.members == [8, 7, 6]
    keeper.release([state], best_trial='t0008')
    for index in range(9):
        trial = results.trial_id(index)
        has = [os.path.exists(store.trial_file(trial, n)) for n in ('last.pt', 'best.pt')]
        if index >= 6:
            assert has == [True, True]  # promoted: continues from last.pt
        elif policy == 'best':
            assert has == [False, True]
            assert set(load(store.trial_file(trial, 'best.pt'))['model']) == {'network'}
        else:
            assert has == [False, False]
    # a crash between last.pt and best.pt of t0006, which the next rung then drops: it still
    # keeps its best epoch (under best), and t0007, promoted again, keeps everything
    write_checkpoint(store, 't0006', 3, 3)
    os.remove(store.trial_file('t0006', 'best.pt'))
    for index, reward in ((8, 1.0), (7, 2.0), (6, 0.0)):
        state.record(index, {'status': 'ok', 'reward': reward})
    assert state.members == [7]
    keeper.release([state], best_trial='t0007')
    assert not any(os.path.exists(store.trial_file(t, 'last.pt')) for t in ('t0006', 't0008'))
    assert files(tmp_path)['t0007'] == ['best.pt', 'last.pt']
    if policy == 'best':
        kept = load(store.trial_file('t0006', 'best.pt'))
        assert kept['epoch'] == 3 and set(kept['model']) == {'network'}
    else:
        assert not os.path.exists(store.trial_file('t0006', 'best.pt'))
    state.record(7, {'status': 'ok', 'reward': 3.0})
    assert state.finished
    keeper.release([state], best_trial='t0007')
    assert files(tmp_path)['t0007'] == ['best.pt']


def test_policy_and_sizes_are_checked_and_shown():
    with pytest.raises(ValueError, match="--keep-checkpoints must be one of all, best, none, "
                                         "got 'some'"):
        checkpoints.CheckpointKeeper(results.ResultStore('.'), 'some')
    assert checkpoints.human_bytes(512) == '512 B'
    assert checkpoints.human_bytes(1536) == '1.5 KiB'
    assert checkpoints.human_bytes(600 * 2 ** 20) == '600 MiB'
