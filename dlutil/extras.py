"""Optional packages, and the one message that names the extra a feature needs.

    tangermeme = extras.require('tangermeme', '--attribute')   # the module, or MissingExtraError:
    # "--attribute needs the package tangermeme: pip install 'dlutil[attribution]'
    #  (in a checkout: pip install -e '.[attribution]')"
    tensorboard = extras.require('tensorboard', '--tensorboard', extra='tensorboard')
    problems += extras.missing(['msprime', 'pysam'], 'this example', extra='genotypes')

:data:`EXTRAS` says which extra of ``pyproject.toml`` installs each optional package (``extra=``
names another one that also installs it); ``tests/test_extras.py`` checks the two agree. A
command checks its extras before any work (:func:`missing`, :data:`FEATURES` for the flags of
the command line), so a search never runs for minutes to fail on an import at the end.
:class:`MissingExtraError` is shown as its message alone, without a traceback, by every command
line (``dlutil._program``), and passes through def.py loading unchanged.
"""
import importlib
import importlib.util

#: optional package (import name) -> the extra of pyproject.toml that installs it
EXTRAS = {
    'ray': 'ray',
    'cyvcf2': 'vep',
    'pysam': 'genotypes',
    'stdpopsim': 'genotypes',
    'msprime': 'popgen',
    'tangermeme': 'attribution',
    'modiscolite': 'attribution',
    'memelite': 'attribution',
    'tensorboard': 'tensorboard',
}

#: the PyPI name where it differs from the import name
DISTRIBUTIONS = {'modiscolite': 'modisco-lite'}

#: the optional packages each flag of the command line needs (checked before any work), and the
#: extra that installs them all
FEATURES = {
    '--attribute': (('tangermeme', 'modiscolite'), 'attribution'),
    '--motifs': (('memelite',), 'attribution'),
    '--vep': (('cyvcf2', 'pysam'), 'vep'),  # reading the VCF, indexing the annotated one
    '--ray': (('ray',), 'ray'),
    '--tensorboard': (('tensorboard',), 'tensorboard'),
}


#: every extra of pyproject.toml but ``test``: its packages and what needs them (for ``--help``)
USES = {
    'attribution': ('tangermeme, modisco-lite, memelite', '--attribute, --motifs'),
    'vep': ('cyvcf2, pysam', '--vep'),
    'ray': ('ray', '--ray'),
    'genotypes': ('cyvcf2, msprime, pysam, stdpopsim', 'prepare vcf, VCF loaders, '
                                                       'examples/local_ancestry'),
    'popgen': ('msprime', 'examples/recombination_hotspot'),
    'tensorboard': ('tensorboard', '--tensorboard'),
}


def help_text():
    """The extras as ``--help`` lists them."""
    width = max(map(len, USES))
    return ("optional extras: pip install 'dlutil[EXTRA]' (a feature that lacks one says which)\n"
            + ''.join(f'  {extra:<{width}}  {packages}: {uses}\n'
                      for extra, (packages, uses) in USES.items()))


class MissingExtraError(ImportError):
    """An optional package a feature needs is not installed; the message says how to get it."""


def hint(package, feature, extra=None):
    """``"FEATURE needs the package P: pip install 'dlutil[EXTRA]' (…)"``; ``extra`` defaults
    to the package's entry in :data:`EXTRAS`."""
    extra = extra or EXTRAS.get(package)
    name = DISTRIBUTIONS.get(package, package)
    if extra is None:
        return f'{feature} needs the package {name}: pip install {name}'
    return (f"{feature} needs the package {name}: pip install 'dlutil[{extra}]' (in a checkout: "
            f"pip install -e '.[{extra}]')")


def missing(packages, feature, extra=None):
    """The hints of ``packages`` that are not installed (found without importing them)."""
    return [hint(package, feature, extra) for package in packages if not installed(package)]


def installed(package):
    """Whether ``package`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken parent
        return False


def require(package, feature, extra=None):
    """Import and return ``package``, or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(package)
    except ImportError as error:
        if error.name is not None and error.name.split('.')[0] != package:
            raise  # the package is there but one of its own imports failed: show that
        raise MissingExtraError(hint(package, feature, extra)) from None
