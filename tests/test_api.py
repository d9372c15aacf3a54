"""dlutil.api: the command line's search, --config, -e, -p and export as functions, in-process."""
import importlib.util
import json

import numpy as np
import pytest

from dlutil import api


def test_notebook_functions_run_what_the_command_line_runs(classifier_def, h5_data, tmp_path):
    spec = importlib.util.spec_from_file_location('notebook_def', classifier_def)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert api.command_line(module, h5_data, 'r', epoch=2, keep_checkpoints='all', cpu=True,
                            eval=False) == ['-f', str(classifier_def), '-d', str(h5_data), '-r',
                                            'r', '--epoch', '2', '--keep-checkpoints', 'all',
                                            '--cpu']
    searched = tmp_path / 'searched'
    best = api.search(module, h5_data, searched, epoch=1, seed=3, threads=1, batch_size=32)
    assert best == json.loads((searched / 'best.json').read_text())
    # one configuration: the search's best, from the same seed, equals its trial
    one = tmp_path / 'one'
    trained = api.train(classifier_def, best['config'], h5_data, one, epoch=1, seed=3,
                        threads=1, batch_size=32)
    assert trained['config'] == best['config'] and trained['trial'] == 't0000'
    scores = api.evaluate(one)  # def.py and data from search.json
    assert scores == json.loads((one / 'test_result.json').read_text())
    assert 0 <= scores['accuracy'] <= 1
    arrays = api.predict(one, ['test_pred_a.h5', 'test_pred_b.h5'])
    assert [a.shape for a in arrays.values()] == [(30, 2), (10, 2)]
    stored = np.load(one / 'predictions' / 'test_pred_b.h5.npy')
    np.testing.assert_array_equal(arrays[str(h5_data / 'test_pred_b.h5')], stored)
    # mistakes raise, naming the option, instead of ending the interpreter
    with pytest.raises(TypeError, match='unknown option epochs='):
        api.search(module, h5_data, tmp_path / 'x', epochs=3)
    with pytest.raises(ValueError, match='--epoch must be at least 1'):
        api.train(module, best['config'], h5_data, tmp_path / 'x', epoch=0)
    with pytest.raises(ValueError, match='unknown depth'):
        api.train(module, {**best['config'], 'depth': 3}, h5_data, tmp_path / 'x', threads=1)
