"""The package layout: what a wheel installs, and the tool run from elsewhere beside a user's own
``models.py`` and ``metrics.py``."""
import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import CLASSIFIER_DEF, ROOT

CONTRACT_MODULES = {'base_model.py', 'batch_generator.py', 'constraints.py'}
BUILD_INPUTS = CONTRACT_MODULES | {'pyproject.toml', 'setup.py', 'README.md', 'dlutil', 'models',
                                   'LICENSE'}

# a def.py that imports its neighbour models.py, which shares its name with the zoo
NEIGHBOUR_DEF = CLASSIFIER_DEF.replace(
    'from constraints import MaxNormConstraint',
    'from constraints import MaxNormConstraint\n\nfrom models import small_network  # neighbour')
NEIGHBOUR_DEF = NEIGHBOUR_DEF[:NEIGHBOUR_DEF.index('        network = ConvClassification')] + '''\
        network = small_network(config['filters'])
        optimizer = optim.Adam(network.parameters(), lr=config['lr'])
        super(Model, self).init_model(network, optimizer)
''' + NEIGHBOUR_DEF[NEIGHBOUR_DEF.index('\n\ndef get_config'):]

USER_MODELS = '''
from torch import nn

from base_model import ConvClassificationNetwork


def small_network(filters):
    return ConvClassificationNetwork(
        features=nn.Sequential(nn.Conv2d(4, filters, (1, 6)), nn.ReLU(), nn.MaxPool2d((1, 35))),
        classifier=nn.Sequential(nn.Linear(filters, 2)))
'''
# files the tool must never import in place of its own modules
SHADOWS = {name: f'raise ImportError("the tool imported the user\'s {name}")\n'
           for name in ('metrics.py', 'interpret.py', 'search.py', 'results.py', 'definition.py')}


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel built from this checkout (``pip wheel --no-deps``), once for the module."""
    out, source = tmp_path_factory.mktemp('wheel'), tmp_path_factory.mktemp('source') / 'x'
    # a copy of what the build reads: setuptools leaves build/ behind, and a stale build/lib
    # in the checkout would put deleted modules into the wheel
    shutil.copytree(ROOT, source, symlinks=True, ignore=lambda folder, names: [
        n for n in names if folder == ROOT and n not in BUILD_INPUTS or n == '__pycache__'])
    done = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                           '--no-build-isolation', '-q', '-w', str(out), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wheels = list(out.glob('dlutil-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope='module')
def installed(wheel, tmp_path_factory):
    """The wheel installed into a folder of its own (``pip install --target``)."""
    target = tmp_path_factory.mktemp('site')
    done = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q',
                           '--target', str(target), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return target


def record_names(wheel):
    """The paths a wheel's RECORD lists."""
    with zipfile.ZipFile(wheel) as archive:
        record = next(n for n in archive.namelist() if n.endswith('.dist-info/RECORD'))
        return [row[0] for row in csv.reader(archive.read(record).decode().splitlines())]


def test_wheel_adds_the_contract_modules_the_zoo_and_dlutil(wheel):
    names = record_names(wheel)
    top = {name.split('/')[0] for name in names if '.dist-info/' not in name}
    assert top == CONTRACT_MODULES | {'dlutil', 'models'}
    # the zoo's code inside the package, its facades under the name a def.py uses
    for module in ('basset', 'deepsea', 'chromdragonn', 'danq', 'pysster', 'zoo', '__init__'):
        assert f'dlutil/models/{module}.py' in names and f'models/{module}.py' in names
    for module in ('files', 'contract', 'sequences/readers', 'sequences/onehot',
                   'sequences/alphabets', 'prepare/cli', 'interpret/kernel_report'):
        assert f'dlutil/{module}.py' in names
    assert not [n for n in names if n.startswith(('tests/', 'examples/', 'benchmarks/'))]
    with zipfile.ZipFile(wheel) as archive:
        entry = next(n for n in archive.namelist() if n.endswith('entry_points.txt'))
        scripts = archive.read(entry).decode()
    assert 'dlutil = dlutil.cli:console' in scripts
    assert 'dlutil-prepare = dlutil.prepare.cli:main' in scripts


def user_folder(folder, data):
    """A def.py with its own models.py and shadowing files beside it; returns the def.py."""
    folder.mkdir()
    (folder / 'def.py').write_text(NEIGHBOUR_DEF)
    (folder / 'models.py').write_text(USER_MODELS)
    for name, text in SHADOWS.items():
        (folder / name).write_text(text)
    return folder / 'def.py'


def run_search(command, def_py, data, result, cwd, env):
    done = subprocess.run(command + ['-f', str(def_py), '-d', str(data), '-r', str(result),
                                     '-y', '-e', '-ep', '1', '-bs', '32'],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    best = json.loads((result / 'best.json').read_text())
    test = json.loads((result / 'test_result.json').read_text())
    assert best['config']['filters'] in (4, 8) and 'loss' in json.dumps(test)
    return done


def test_installed_wheel_runs_from_another_directory(installed, h5_data, tmp_path):
    """The wheel alone (not the checkout) on the path: --help, then a tiny search run from the
    def.py's folder, where the user's models.py, metrics.py, … come first on sys.path."""
    env = dict(os.environ, PYTHONPATH=str(installed))
    def_py = user_folder(tmp_path / 'user', h5_data)
    where = subprocess.run([sys.executable, '-c', 'import base_model, dlutil, dlutil.models.basset;'
                            'print(base_model.__file__); print(dlutil.models.basset.__file__)'],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(installed)) for line in where.stdout.split())
    shown = subprocess.run([sys.executable, '-m', 'dlutil', '--help'], capture_output=True,
                           text=True, cwd=tmp_path, env=env, timeout=120)
    assert shown.returncode == 0 and 'usage: python -m dlutil' in shown.stdout
    assert 'get_train_generator(data_dir, batch_size)' in shown.stdout  # the contract
    run_search([sys.executable, '-m', 'dlutil'], def_py, h5_data, tmp_path / 'r', def_py.parent,
               env)


# every shipped def.py (the examples' own names for theirs included)
EXAMPLE_DEFS = sorted(os.path.join(folder, name)
                      for folder, _, names in os.walk(os.path.join(ROOT, 'examples'))
                      for name in names if name in ('def.py', 'conv_model.py', 'reg_model.py'))


def test_installed_command_loads_every_example_from_another_directory(installed, tmp_path):
    """``dlutil --check`` of the installed wheel (its console script, the checkout nowhere on
    the path) loads each example's def.py; the zoo's two names give the same classes."""
    assert len(EXAMPLE_DEFS) >= 6
    env = dict(os.environ, PYTHONPATH=str(installed))
    same = subprocess.run(
        [sys.executable, '-c', 'import models.basset, dlutil.models.basset, models.pysster, '
         'dlutil.models.pysster; assert models.basset.Basset is dlutil.models.basset.Basset; '
         'assert models.pysster.PyssterModel is dlutil.models.pysster.PyssterModel; '
         'print(models.basset.__file__)'],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith(str(installed))
    command = os.path.join(installed, 'bin', 'dlutil')
    for def_py in EXAMPLE_DEFS:
        done = subprocess.run([command, '-f', def_py, '-d', str(tmp_path), '-r',
                               str(tmp_path / 'r'), '--check'],
                              capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
        assert done.returncode == 0, (def_py, done.stderr[-2000:])
        assert 'meets the contract for -y, -e, -p' in done.stdout
    assert not (tmp_path / 'r').exists()  # --check writes nothing


def test_checkout_beside_a_users_models_and_metrics(h5_data, tmp_path):
    """The documented command in a checkout, run from elsewhere: the def.py gets the models.py
    beside it (not the zoo), and the tool imports none of the user's metrics.py, search.py, …
    (each raises ImportError when imported)."""
    def_py = user_folder(tmp_path / 'user', h5_data)
    run_search([sys.executable, os.path.join(ROOT, 'main.py')], def_py, h5_data, tmp_path / 'r',
               tmp_path, dict(os.environ))


def test_a_users_models_py_wins_even_after_the_zoo_was_imported(h5_data, tmp_path):
    """In one process that imported the zoo's facade first (a notebook), loading the def.py
    still gives it its own models.py."""
    def_py = user_folder(tmp_path / 'user', h5_data)
    probe = ('import sys; sys.path.insert(0, sys.argv[1]); import models.basset; '
             'from dlutil.definition import load_module; '
             'm = load_module(sys.argv[2]); print(m.small_network.__module__, '
             'sys.modules["models"].__file__)')
    done = subprocess.run([sys.executable, '-c', probe, ROOT, str(def_py)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ['models', str(def_py.parent / 'models.py')]


def readme_tree():
    """The paths the README's Layout tree draws: ``dlutil/search/trial.py``, ``models/``, …"""
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as handle:
        text = handle.read()
    block = text[text.index('## Layout'):].split('```')[1]
    paths, folders = [], []
    for line in block.strip('\n').splitlines():
        depth = (len(line) - len(line.lstrip(' '))) // 2
        name = line.split()[0]
        folders = folders[:depth]
        paths.append('/'.join(folders + [name]))
        if name.endswith('/'):
            folders.append(name.rstrip('/'))
    return paths


def test_readme_layout_lists_every_module_once():
    drawn = readme_tree()
    assert len(drawn) == len(set(drawn))
    modules = {os.path.relpath(os.path.join(folder, name), ROOT)
               for folder, _, names in os.walk(os.path.join(ROOT, 'dlutil'))
               for name in names if name.endswith('.py') and name != '__init__.py'}
    top = {name for name in os.listdir(ROOT) if name.endswith('.py')}
    assert {p for p in drawn if p.endswith('.py')} == modules | top
    assert {'models/', 'examples/', 'tests/', 'dlutil/models/'} <= set(drawn)
