"""Bad input: a clear message naming the file, function or value; non-zero exit; no traceback."""
import re

import h5py
import numpy as np
import pytest

from conftest import CLASSIFIER_DEF, run_cli, write_def


def assert_clean_error(code, err, *fragments):
    assert code != 0
    assert 'Traceback' not in err
    for fragment in fragments:
        assert fragment in err, f'{fragment!r} not in {err!r}'


def test_missing_def_py(cli, h5_data, tmp_path):
    code, err = cli('-f', tmp_path / 'nope.py', '-d', h5_data, '-r', tmp_path / 'r', '-y')
    assert_clean_error(code, err, 'nope.py: no such file')


def test_def_py_with_a_syntax_error_names_the_line(cli, h5_data, tmp_path):
    path = write_def(tmp_path, 'import os\n\ndef get_config(:\n    pass\n')
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y')
    assert_clean_error(code, err, 'def.py, line 3: SyntaxError')


def test_def_py_that_fails_to_import_names_the_line(cli, h5_data, tmp_path):
    path = write_def(tmp_path, 'import os\nx = 1\nimport not_a_module_anywhere\n')
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y')
    assert_clean_error(code, err, 'def.py, line 3', 'ModuleNotFoundError', 'not_a_module_anywhere')


def test_all_missing_functions_are_listed_at_once(cli, h5_data, tmp_path):
    path = write_def(tmp_path, 'def get_val_generator(data_dir):\n    pass\n')
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-e', '-p', 'test.h5')
    assert_clean_error(code, err, 'missing Model, get_config, get_train_generator, '
                                  'get_test_generator, get_pred_generator', '-y -e -p')


def test_model_that_is_not_a_base_model_or_lacks_methods(cli, h5_data, tmp_path):
    path = write_def(tmp_path, '''
        import base_model
        class Model(base_model.BaseModel):
            def init_model(self):
                pass
        def get_config():
            return {}
        def get_train_generator(data_dir, batch_size):
            pass
    ''')
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y')
    assert_clean_error(code, err, 'Model does not implement train_metrics, eval_metrics, '
                                  'get_hyperband_reward')
    path = write_def(tmp_path, 'class Model:\n    pass\n', name='other.py')
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-e')
    assert_clean_error(code, err, 'Model must be a class that extends base_model.BaseModel',
                       'missing get_test_generator')


def test_missing_validation_generator(cli, h5_data, tmp_path):
    path = write_def(tmp_path, CLASSIFIER_DEF.replace('def get_val_generator', 'def _unused'))
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1)
    assert_clean_error(code, err, 'get_train_generator returned one generator',
                       'get_val_generator(data_dir)')


def test_missing_data_directory(cli, classifier_def, tmp_path):
    code, err = cli('-f', classifier_def, '-d', tmp_path / 'nodata', '-r', tmp_path / 'r', '-y')
    assert_clean_error(code, err, 'nodata: no such directory')


def test_data_glob_that_matches_nothing_names_the_function(cli, classifier_def, tmp_path):
    (tmp_path / 'empty').mkdir()
    code, err = cli('-f', classifier_def, '-d', tmp_path / 'empty', '-r', tmp_path / 'r', '-y')
    assert_clean_error(code, err, 'get_train_generator', 'no file matches', 'train.h5')


def test_predict_glob_that_matches_nothing(cli, classifier_def, h5_data, tmp_path):
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-p', 'zzz*.h5')
    assert_clean_error(code, err, "--predict 'zzz*.h5': no file matches")


def test_malformed_hdf5_is_named(cli, classifier_def, h5_data, tmp_path):
    (h5_data / 'train.h5').write_bytes(b'\x89HDF not really')
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1)
    assert_clean_error(code, err, 'train.h5: not a readable HDF5 file')


def test_hdf5_without_the_data_dataset(cli, classifier_def, h5_data, tmp_path):
    with h5py.File(h5_data / 'valid.h5', 'w') as f:
        f['inputs'] = np.zeros((4, 4, 1, 40))
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1)
    assert_clean_error(code, err, 'valid.h5: HDF5 file has no dataset "data"')


def test_labels_that_do_not_fit_the_network_stop_the_search(cli, classifier_def, h5_data,
                                                            tmp_path):
    with h5py.File(h5_data / 'train.h5', 'r+') as f:
        del f['label']
        f['label'] = np.full(160, 4.0, np.float32)
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 3)
    assert_clean_error(code, err, 'labels must be class indices in [0, 2)', 'found 4',
                       'training generator')
    assert not (tmp_path / 'r' / 'search.csv').exists()  # no trial was recorded as failed


@pytest.mark.parametrize('flag', ['-e', '-p'])
def test_eval_or_predict_without_a_trained_model(cli, classifier_def, h5_data, tmp_path, flag):
    args = ['-p', 'test.h5'] if flag == '-p' else ['-e']
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', *args)
    assert_clean_error(code, err, 'no trained model', 'run with -y first')
    assert not (tmp_path / 'r').exists()  # no folder, no .lock left behind


def test_nothing_to_do(cli, classifier_def, h5_data, tmp_path):
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r')
    assert_clean_error(code, err, 'nothing to do')


def test_bad_numbers_are_reported_together(cli, classifier_def, h5_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-y', '--eta', 1,
            '-ep', 0)
    assert exit_info.value.code == 2
    assert_clean_error(2, capsys.readouterr().err, '--epoch must be at least 1, got 0',
                       '--eta must be at least 2, got 1')


def test_get_config_that_is_not_json(cli, h5_data, tmp_path):
    path = write_def(tmp_path, CLASSIFIER_DEF.replace(
        "return {'filters'", "return {'f': object(), 'filters'"))
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1)
    assert_clean_error(code, err, 'get_config() must return a JSON-serialisable dict')


def test_a_failing_loader_names_itself_and_its_line(cli, h5_data, tmp_path):
    path = write_def(tmp_path, CLASSIFIER_DEF.replace(
        "def get_test_generator(data_dir):\n",
        "def get_test_generator(data_dir):\n    raise KeyError('fold')\n"))
    assert cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1, '-bs', 32)[0] == 0
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-e')
    assert_clean_error(code, err, 'def.py, line', 'get_test_generator(', "KeyError: 'fold'")


def test_subprocess_exit_code_and_debug_traceback(h5_data, tmp_path):
    path = write_def(tmp_path, 'import nothing_here_at_all\n')
    quiet = run_cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y')
    assert quiet.returncode == 1 and 'Traceback' not in quiet.stderr
    assert 'def.py, line 1' in quiet.stderr and '--debug' in quiet.stderr
    loud = run_cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y', '--debug')
    assert loud.returncode != 0 and 'Traceback' in loud.stderr


def test_help_shows_every_flag_and_the_contract():
    out = run_cli('--help').stdout
    for flag in ('-f DEF_PY, --model', '-d DATA_DIR, --data', '-r RESULT_DIR, --result',
                 '-p PATTERN, --predict', '-y, --hyper', '-e, --eval', '--debug', '-c, --cpu',
                 '--epoch R', '--batch-size N', '--eta', '--seed',
                 'get_train_generator(data_dir, batch_size)', 'get_pred_generator(pred_path)',
                 'save_prediction(pred_path, Y)', 'get_hyperband_reward'):
        assert flag in out, flag


@pytest.mark.parametrize('old, new, dest', [('--interpret-top', '--interpret-kernels',
                                             'interpret_kernels'),
                                            ('--vep-top', '--vep-rows', 'vep_top'),
                                            ('--attribute-top', '--attribute-sequences',
                                             'attribute_top')])
def test_renamed_flags_keep_their_old_spelling_with_a_notice(capsys, old, new, dest):
    from dlutil import cli
    parser = cli.build_parser()
    base = ['-f', 'def.py', '-d', 'data', '-r', 'r']
    assert getattr(parser.parse_args(base + [new, '7']), dest) == 7
    assert capsys.readouterr().err == ''
    assert getattr(parser.parse_args(base + [old, '7']), dest) == 7
    assert capsys.readouterr().err == f'note: {old} is now called {new}; the old name still works\n'
    help_text = parser.format_help()
    assert new in help_text and old not in help_text
    # -ep and -bs stay, unannounced and undocumented: --epoch and --batch-size are the names
    args = parser.parse_args(base + ['-ep', '3', '-bs', '8'])
    assert (args.epoch, args.batch_size) == (3, 8)
    assert not re.search(r'(?<!-)-(ep|bs)\b', help_text)


def test_check_args_leaves_the_arguments_as_parsed():
    from dlutil import cli
    parser = cli.build_parser()
    args = parser.parse_args(['-f', 'def.py', '-d', 'data', '-r', 'r', '-y', '--gpus', '0,2'])
    assert args.gpus == [0, 2]
    before = dict(vars(args))
    cli.check_args(parser, args)
    assert vars(args) == before


def test_bad_gpu_ids_name_the_flag(capsys):
    from dlutil import cli
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(['-f', 'def.py', '-d', 'data', '-r', 'r', '--gpus', 'a,b'])
    assert exit_info.value.code == 2
    assert "argument --gpus: expected comma-separated integers like 0,1, got 'a,b'" in \
        capsys.readouterr().err


def test_a_ddp_group_larger_than_the_cores_is_refused(cli, classifier_def, h5_data, tmp_path):
    from dlutil.threads import usable_cores
    cores = usable_cores()
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-c',
                    '--ddp', cores + 1)
    assert_clean_error(code, err, f'--ddp {cores + 1}: a group of {cores + 1} processes on the '
                                  f'CPU needs a core each, and this process may use {cores}')
    assert not (tmp_path / 'r' / 'search.json').exists()


def test_a_ray_address_where_nothing_answers_is_refused_at_once(cli, classifier_def, h5_data,
                                                                tmp_path):
    """Ray itself retries such an address for minutes; a TCP probe refuses it at once (port 1
    of this machine: nothing listens there), and the refused run leaves no search.json."""
    pytest.importorskip('ray')
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-c',
                    '--ray', '127.0.0.1:1')
    assert_clean_error(code, err, '--ray 127.0.0.1:1: no Ray head node answers there within 5 s '
                                  '(connection refused)')
    assert not (tmp_path / 'r' / 'search.json').exists()


def test_the_ray_timeout_in_help_is_the_one_used():
    from dlutil import cli
    from dlutil.search.executors import ray
    assert cli.RAY_CONNECT_SECONDS == ray.CONNECT_SECONDS


def test_sys_exit_in_init_model_is_an_error_naming_the_def_py(cli, h5_data, tmp_path):
    path = write_def(tmp_path, CLASSIFIER_DEF.replace(
        '    def init_model(self):\n', '    def init_model(self):\n        import sys\n'
                                      '        sys.exit(0)\n'))
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1)
    assert_clean_error(code, err, f'{path}, line ', 'sys.exit(0) was called; a def.py must not '
                                                    'end the program')


def test_an_output_error_names_its_flag_once(monkeypatch):
    """runner.run_modes: 'error: FLAG: message', unless the message names the flag already."""
    from dlutil import runner
    lines = []
    monkeypatch.setattr(runner.log, 'error', lambda line, **kwargs: lines.append(line))

    def fails(message):
        def work():
            raise ValueError(message)
        return work
    assert runner.run_modes({'--vep': fails('--vep: the model does not say its input length'),
                             '-e': fails('test.h5: no such file'),
                             '-p': lambda: None}) == 1
    assert lines[:2] == ['error: --vep: the model does not say its input length',
                         'error: -e: test.h5: no such file']
    assert lines[2].startswith('--vep and -e failed; -p finished and wrote its outputs')
