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


def test_wheel_adds_only_the_contract_modules_and_dlutil(wheel):
    names = record_names(wheel)
    top = {name.split('/')[0] for name in names if '.dist-info/' not in name}
    assert top == CONTRACT_MODULES | {'dlutil'}
    # the zoo is inside the package, as real files (the checkout's dlutil/models is a link)
    for module in ('basset', 'deepsea', 'chromdragonn', 'danq', 'pysster', 'zoo', '__init__'):
        assert f'dlutil/models/{module}.py' in names
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


# every module of the tool imported, then the def.py loaded as the CLI loads it
CHECKOUT_PROBE = """
import importlib, os, pkgutil, sys
import dlutil
for info in pkgutil.walk_packages(dlutil.__path__, 'dlutil.'):
    if not info.name.endswith('__main__'):
        importlib.import_module(info.name)
from dlutil.definition import Definition
definition = Definition.load('def.py', hyper=True, eval=True)
files = {name: getattr(m, '__file__', None) for name, m in list(sys.modules.items())}
print(sorted(name for name, f in files.items()
             if isinstance(f, str) and os.path.dirname(f) == os.getcwd()))
"""


def test_checkout_beside_a_users_models_and_metrics(h5_data, tmp_path):
    """In a checkout, with the def.py's folder first on sys.path: the def.py gets its own
    models.py; the tool, every one of its modules (none is the user's metrics.py, …)."""
    def_py = user_folder(tmp_path / 'user', h5_data)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(def_py.parent), ROOT]))
    done = subprocess.run([sys.executable, '-c', CHECKOUT_PROBE], capture_output=True, text=True,
                          cwd=def_py.parent, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split('\n')[0] == "['models', 'user_def']"  # the def.py itself and its neighbour, nothing else


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
               for name in names if name.endswith('.py') and name != '__init__.py'
               and not os.path.islink(folder) and os.sep + 'models' not in folder[len(ROOT):]}
    top = {name for name in os.listdir(ROOT) if name.endswith('.py')}
    assert {p for p in drawn if p.endswith('.py')} == modules | top
    assert {'models/', 'examples/', 'tests/', 'dlutil/models'} <= set(drawn)
