"""Converted genotype files kept in a cache keyed by the content of their inputs.

A data folder is input: nothing is written into it. A VCF converted to the genotype format is
kept under :func:`cache_dir` as ``<kind>-<key>.h5``, where the key is a SHA-256 of the bytes of
every input (the VCF and, for a reference panel, its sample table) and of the conversion's
settings. The same inputs find the same file (a re-run converts nothing); an edited sample
table, or a VCF with other content, gets a new one. Files of the cache are written atomically,
so two processes converting the same inputs at once leave one complete file.

The cache folder is ``$DLUTIL_CACHE`` when set, else ``$XDG_CACHE_HOME/dlutil``, else
``~/.cache/dlutil``; deleting it is always safe.
"""
import hashlib
import os

CHUNK = 1 << 20


def cache_dir():
    """The cache folder (not created here)."""
    root = os.environ.get('DLUTIL_CACHE')
    if not root:
        base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'),
                                                                 '.cache')
        root = os.path.join(base, 'dlutil')
    return os.path.abspath(root)


def content_key(paths, settings=()):
    """A hex SHA-256 (20 characters) of the bytes of ``paths``, in order, and of ``settings``.

    Parameters
    ----------
    paths: list of str
        Files whose content the key depends on (not their names, times or folders).
    settings: tuple of str
        Anything else the derived file depends on (e.g. a format version).
    """
    digest = hashlib.sha256()
    for path in paths:
        digest.update(b'\0file\0')
        with open(path, 'rb') as handle:
            for block in iter(lambda: handle.read(CHUNK), b''):
                digest.update(block)
    for value in settings:
        digest.update(b'\0setting\0' + str(value).encode())
    return digest.hexdigest()[:20]


def converted(vcf, sample_table=None, kind='genotypes', log=None):
    """The genotype file of ``vcf`` (labelled by ``sample_table``) in the cache, converted on
    first use.

    Parameters
    ----------
    vcf: str
        A phased VCF/BCF.
    sample_table: str or None
        ``sample<TAB>population``: labels per haplotype (a reference panel).
    kind: str
        Prefix of the cached file's name (e.g. ``'reference'``, ``'query'``).
    log: logging.Logger or None
        Told when a conversion runs.

    Returns
    -------
    str: the path of the cached ``.h5``
    """
    from dlutil.genotypes.h5 import FORMAT, VERSION
    from dlutil.genotypes.vcf import vcf_to_h5
    inputs = [vcf] + ([sample_table] if sample_table else [])
    key = content_key(inputs, settings=(FORMAT, VERSION, bool(sample_table)))
    folder = os.path.join(cache_dir(), 'genotypes')
    out = os.path.join(folder, f'{kind}-{key}.h5')
    if not os.path.isfile(out):
        os.makedirs(folder, exist_ok=True)
        summary = vcf_to_h5(vcf, out, sample_table)
        if log is not None:
            log.info(f'{vcf} -> {out} (cache): {summary["haplotypes"]} haplotypes x '
                     f'{summary["variants"]} variants; skipped {summary["skipped"]}')
    return out


__all__ = ['cache_dir', 'content_key', 'converted']
