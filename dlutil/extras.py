"""Optional packages, and the one message that names the extra a feature needs.

    ray = extras.require('ray', 'ray', '--ray')   # the module, or MissingExtraError:
    # "--ray needs the package ray: pip install 'dlutil[ray]' (in a checkout: pip install -e '.[ray]')"

:data:`EXTRAS` says which extra of ``pyproject.toml`` installs each optional package;
``tests/test_extras.py`` checks the two agree. A command checks its extras before any work
(:func:`missing`), so a search never runs for minutes to fail on an import at the end.
"""
import importlib
import importlib.util

#: optional package (import name) -> the extra of pyproject.toml that installs it
EXTRAS = {
    'ray': 'ray',
    'cyvcf2': 'vep',
    'pysam': 'genotypes',
    'msprime': 'popgen',
    'tangermeme': 'attribution',
    'modiscolite': 'attribution',
    'memelite': 'attribution',
    'tensorboard': 'tensorboard',
}

#: the PyPI name where it differs from the import name
DISTRIBUTIONS = {'modiscolite': 'modisco-lite'}


class MissingExtraError(ImportError):
    """An optional package a feature needs is not installed; the message says how to get it."""


def hint(package, feature):
    """``"FEATURE needs the package P: pip install 'dlutil[EXTRA]' (…)"``."""
    extra = EXTRAS.get(package)
    name = DISTRIBUTIONS.get(package, package)
    if extra is None:
        return f'{feature} needs the package {name}: pip install {name}'
    return (f"{feature} needs the package {name}: pip install 'dlutil[{extra}]' (in a checkout: "
            f"pip install -e '.[{extra}]')")


def missing(packages, feature):
    """The hints of ``packages`` that are not installed (found without importing them)."""
    return [hint(package, feature) for package in packages
            if importlib.util.find_spec(package) is None]


def require(package, feature):
    """Import and return ``package``, or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(package)
    except ImportError as error:
        if error.name is not None and error.name.split('.')[0] != package:
            raise  # the package is there but one of its own imports failed: show that
        raise MissingExtraError(hint(package, feature)) from None
