"""The message of a missing optional package names the extra that installs it."""
import sys
import tomllib

import pytest

from conftest import ROOT
from dlutil import extras


def optional_dependencies():
    with open(f'{ROOT}/pyproject.toml', 'rb') as handle:
        return tomllib.load(handle)['project']['optional-dependencies']


def test_each_package_names_an_extra_that_installs_it():
    declared = optional_dependencies()
    for package, extra in extras.EXTRAS.items():
        name = extras.DISTRIBUTIONS.get(package, package)
        assert extra in declared, f'{package}: no extra {extra!r} in pyproject.toml'
        assert any(req.split('>')[0].split('[')[0].split('=')[0] == name
                   for req in declared[extra]), f'{name} is not in the {extra!r} extra'


def test_a_missing_package_gets_the_install_line(monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, 'no_such_package_xyz', 'attribution')
    with pytest.raises(extras.MissingExtraError) as caught:
        extras.require('no_such_package_xyz', '--attribute')
    assert str(caught.value) == ("--attribute needs the package no_such_package_xyz: pip install "
                                 "'dlutil[attribution]' (in a checkout: pip install -e "
                                 "'.[attribution]')")
    assert extras.missing(['no_such_package_xyz', 'numpy'], '--attribute') == [str(caught.value)]
    assert extras.require('json', 'x') is sys.modules['json']


def test_a_broken_import_inside_an_installed_package_is_not_called_missing(tmp_path,
                                                                          monkeypatch):
    (tmp_path / 'brokenpkg_xyz').mkdir()
    (tmp_path / 'brokenpkg_xyz' / '__init__.py').write_text('import no_such_dependency_xyz\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match='no_such_dependency_xyz'):
        extras.require('brokenpkg_xyz', '--x')
