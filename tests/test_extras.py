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


# --- from the command line, with the optional package hidden -----------------------------------

HIDE = '''
import os, runpy, sys
for name in sys.argv[1].split(','):
    sys.modules[name] = None  # "import name" fails as if it were not installed
sys.argv = sys.argv[2:]
if sys.argv[0] == '-m':
    del sys.argv[0]
    sys.path[0] = os.getcwd()
    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
else:  # as "python script.py" runs it: its folder first on sys.path
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
    runpy.run_path(sys.argv[0], run_name='__main__')
'''


def run_without(tmp_path, packages, *argv, cwd=ROOT):
    """Run ``python ARGV...`` with ``packages`` hidden; returns the CompletedProcess."""
    import subprocess
    script = tmp_path / 'hide.py'
    script.write_text(HIDE)
    return subprocess.run([sys.executable, str(script), ','.join(packages), *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def hint_line(feature, package, extra):
    return (f"{feature} needs the package {package}: pip install 'dlutil[{extra}]' (in a "
            f"checkout: pip install -e '.[{extra}]')")


def test_flags_name_the_extra_they_need_before_any_work(tmp_path):
    (tmp_path / 'x.vcf').write_text('')
    (tmp_path / 'g.fa').write_text('')
    done = run_without(tmp_path, ['tangermeme', 'cyvcf2', 'ray'], 'main.py', '-f', 'def.py',
                       '-d', tmp_path, '-r', tmp_path / 'r', '--attribute', '--vep',
                       tmp_path / 'x.vcf', '--genome', tmp_path / 'g.fa', '--ray', '-y')
    assert done.returncode != 0
    for line in (hint_line('--attribute', 'tangermeme', 'attribution'),
                 hint_line('--vep', 'cyvcf2', 'vep'),
                 hint_line('--ray', 'ray', 'ray') + ', on the driver and on every node'):
        assert line in done.stderr
    assert 'Traceback' not in done.stderr and not (tmp_path / 'r').exists()


def test_an_example_that_needs_msprime_says_so(tmp_path):
    """The recombination-hotspot def.py imports msprime (through simulate.py), and so do its
    scripts; the local-ancestry simulation names all three packages it lacks at once."""
    example = f'{ROOT}/examples/recombination_hotspot'
    checked = run_without(tmp_path, ['msprime'], 'main.py', '-f', f'{example}/def.py', '-d',
                          tmp_path, '-r', tmp_path / 'r', '--check')
    made = run_without(tmp_path, ['msprime'], 'make_data.py', '--out', tmp_path / 'd',
                       cwd=example)
    simulated = run_without(tmp_path, ['msprime', 'pysam'],
                            f'{ROOT}/examples/local_ancestry/simulate.py', '--out', tmp_path)
    line = hint_line('the recombination-hotspot example', 'msprime', 'popgen')
    assert (checked.returncode, checked.stderr.strip()) == (1, f'error: {line}')
    assert (made.returncode, made.stderr.strip()) == (1, f'error: {line}')
    assert simulated.returncode == 1
    assert simulated.stderr.strip().splitlines() == [
        f'error: {hint_line("simulate.py", p, "genotypes")}' for p in ('msprime', 'pysam')]


def test_prepare_vcf_names_the_genotypes_extra(tmp_path):
    vcf = tmp_path / 'panel.vcf'
    vcf.write_text('##fileformat=VCFv4.2\n')
    done = run_without(tmp_path, ['cyvcf2'], '-m', 'dlutil.prepare', 'vcf', vcf, '-o',
                       tmp_path / 'out')
    assert (done.returncode, done.stderr.strip()) == (
        1, f'error: {hint_line(f"reading the VCF/BCF {vcf}", "cyvcf2", "genotypes")}')


def test_an_extra_given_by_name_overrides_the_table():
    assert extras.hint('tensorboard', '--tensorboard', extra='tensorboard') == \
        hint_line('--tensorboard', 'tensorboard', 'tensorboard')
    assert extras.missing(['no_such_package_xyz'], 'simulate.py', extra='genotypes') == \
        [hint_line('simulate.py', 'no_such_package_xyz', 'genotypes')]


def test_help_lists_every_extra_with_its_packages():
    declared = optional_dependencies()
    assert set(extras.USES) == set(declared) - {'test'}
    for extra, (packages, _) in extras.USES.items():
        names = {req.split('>')[0].split('[')[0].split('=')[0] for req in declared[extra]}
        assert set(packages.split(', ')) == names, extra
    from dlutil.cli import build_parser
    text = build_parser().format_help()
    assert "optional extras: pip install 'dlutil[EXTRA]'" in text
    assert '  attribution  tangermeme, modisco-lite, memelite: --attribute, --motifs' in text
