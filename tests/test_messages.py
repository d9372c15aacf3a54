"""What the user reads: hints only where they help, the program's own name, readable numbers."""
import re
import subprocess
import sys

import pytest

from conftest import CLASSIFIER_DEF, ROOT, write_def
from dlutil import cli as main
from dlutil.definition import Definition, DefinitionError

DEBUG_HINT = '(run with --debug for the traceback)'


def test_misspelt_function_gets_a_did_you_mean(cli, h5_data, tmp_path):
    text = CLASSIFIER_DEF.replace('def get_test_generator', 'def get_tset_generator')
    path = write_def(tmp_path, text)
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-e')
    assert code == 1
    assert 'missing get_test_generator (needed for -e) (did you mean get_tset_generator for ' \
           'get_test_generator?)' in err
    assert DEBUG_HINT not in err  # the message says everything: no traceback to look at
    # a run that does not need it yet warns, and goes on
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1, '-bs', 32,
                    '--seed', 0, '-c')
    assert code == 0, err
    assert 'no get_test_generator (did you mean get_tset_generator for get_test_generator?)' \
        in err


def test_no_debug_hint_after_a_flag_mismatch_but_one_after_a_def_py_failure(cli, classifier_def,
                                                                          h5_data, tmp_path):
    result = tmp_path / 'r'
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', result, '-y', '-ep', 1, '-bs',
                    32, '--seed', 0, '-c')
    assert code == 0, err
    # rewards read as 4 significant digits in the log, not 17
    rewards = re.findall(r'rung 0: 1 epochs, reward (\S+) \(ok\)', err)
    assert rewards and all(len(r.lstrip('-').replace('.', '').lstrip('0')) <= 4
                           for r in rewards), rewards
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', result, '-y', '-ep', 3, '-bs',
                    32, '-c')
    assert code == 1 and '--epoch 1 (now 3)' in err and DEBUG_HINT not in err
    code, err = cli('-f', classifier_def, '-d', tmp_path / 'none', '-r', result, '-e')
    assert code == 1 and 'no such directory' in err and DEBUG_HINT not in err

    broken = write_def(tmp_path, CLASSIFIER_DEF.replace(
        "    return H5pyBatchGenerator(os.path.join(data_dir, 'test.h5'))",
        "    raise KeyError('the test file')"), name='broken.py')
    code, err = cli('-f', broken, '-d', h5_data, '-r', result, '-e', '-c')
    assert code == 1 and "get_test_generator" in err and "KeyError: 'the test file'" in err
    assert DEBUG_HINT in err  # the user's own frames are worth seeing


def test_every_trial_failed_needs_no_traceback(cli, h5_data, tmp_path):
    path = write_def(tmp_path, CLASSIFIER_DEF.replace(
        "        super(Model, self).init_model(", "        raise ValueError('no such layer')\n"
        "        super(Model, self).init_model("))
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1, '-c')
    assert code == 1 and 'every trial failed' in err and DEBUG_HINT not in err


def test_hint_rule():
    assert not main.has_useful_traceback(ValueError('--epoch 1 (now 3)'))
    assert main.has_useful_traceback(RuntimeError('internal'))
    try:
        import numpy
        numpy.zeros(2).reshape(3)
    except ValueError as error:  # raised outside this package: the frames help
        assert main.has_useful_traceback(error)
    try:
        try:
            {}['x']
        except KeyError as error:
            raise DefinitionError('def.py, line 3: get_config() failed') from error
    except DefinitionError as error:
        assert main.has_useful_traceback(error)


@pytest.mark.parametrize('argv0, shown', [('/usr/local/bin/dlutil', 'dlutil --help'),
                                          ('main.py', 'python main.py --help'),
                                          ('/x/dlutil/__main__.py', 'python -m dlutil --help')])
def test_contract_errors_name_the_program_as_it_was_run(monkeypatch, tmp_path, argv0, shown):
    monkeypatch.setattr(sys, 'argv', [argv0])
    path = write_def(tmp_path, 'def get_val_generator(data_dir):\n    pass\n')
    with pytest.raises(DefinitionError, match=re.escape(f'See `{shown}` for the contract')):
        Definition.load(str(path), hyper=True)


def test_prepare_bed_help_describes_bed_defaults():
    def help_of(command):
        return subprocess.run([sys.executable, '-m', 'dlutil.prepare', command, '--help'],
                              capture_output=True, text=True, cwd=ROOT, check=True).stdout
    bed, fasta = help_of('bed'), help_of('fasta')
    bed = bed.split('examples:')[0]  # the shared examples show both commands
    assert 'one-per-class' not in bed and 'FASTA file names' not in bed
    assert 'class indices in the label column' in ' '.join(bed.split())
    assert '--one-per-class' in fasta
