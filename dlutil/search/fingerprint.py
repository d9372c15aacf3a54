"""What a search's results depend on, and what changed since it began.

A search is identified by everything that changes its results: the flags (R, η, batch size,
sampler, budget, seed), the def.py, the environment variables the def.py reads, and the data
under ``--data``. ``search.json`` records them; a later run compares.

- def.py is compared by its syntax tree, one digest per top-level name (``Model``,
  ``get_config``, …), so whitespace and comments do not count and a change can be named.
- ``--data`` is compared by content: the relative name, size and SHA-256 of every file under it
  (at most :data:`MAX_FILES` files), not by its path or the files' modification times, so the
  same data copied elsewhere (``cp -rp`` to node-local scratch) or touched is the same data. A
  file's hash is cached in the results directory (:data:`HASH_CACHE`) under its path, size,
  modification time and inode, so an unchanged data set is read once, not on every run. A
  results directory inside ``--data`` (``-d . -r results``) and the old searches moved aside
  beside it are not data (the caller says which folders those are).
"""
import ast
import hashlib
import os
import re

from tqdm.auto import tqdm

from dlutil.files import CorruptFileError, read_json, write_json

MAX_FILES = 10000   # files the data fingerprint lists at most
MAX_LISTED = 1000   # files whose size and hash search.json keeps, to name what changed
HASH_CACHE = '.data-hashes.json'  # in the results directory: path -> size, mtime, inode, hash
CACHED = 50000  # hashes of files outside the data folder read now that the cache keeps
BAR_BYTES = 256 * 2 ** 20  # hashing more than this shows a progress bar
# def.py names that do not change what a trained model is: -e/-p may use weights trained
# before they changed (they only sample configurations or read data)
LOADERS = ('get_config', 'get_space', 'get_train_generator', 'get_val_generator',
           'get_test_generator', 'get_pred_generator', 'save_prediction')

ENVIRONMENT_READ = re.compile(
    r'''(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]''')


def read_environment(def_path):
    """The environment variables a def.py reads (by name, literally), and their values now.

    They change the data or the model as much as a flag does, so a search records them.
    """
    with open(def_path, encoding='utf-8') as handle:
        names = sorted(set(ENVIRONMENT_READ.findall(handle.read())))
    return {name: os.environ.get(name) for name in names}


def file_sha256(path):
    """The SHA-256 of a file's bytes (how older searches recorded their def.py)."""
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _statement_names(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        return names or ['(module code)']
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return ['(imports)']
    return ['(module code)']


def definition_digest(def_path):
    """``{'digest': hex, 'parts': {top-level name: hex}}`` of a def.py's syntax tree.

    Comments, blank lines and formatting do not change it; anything Python would run
    differently does (a docstring counts: it is part of the tree).
    """
    with open(def_path, 'rb') as handle:
        tree = ast.parse(handle.read(), filename=str(def_path))
    parts = {}
    for node in tree.body:
        dump = ast.dump(node, annotate_fields=True, include_attributes=False)
        for name in _statement_names(node):
            parts[name] = parts.get(name, '') + dump
    digests = {name: hashlib.sha256(text.encode()).hexdigest()[:16]
               for name, text in sorted(parts.items())}
    whole = hashlib.sha256(repr(sorted(digests.items())).encode()).hexdigest()
    return {'digest': whole, 'parts': digests}


def _listed(root, skip):
    """``[(relative name, path, stat)]`` of the files under ``root``, at most :data:`MAX_FILES`."""
    entries = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(s for s in subfolders
                               if skip is None or not skip(os.path.join(folder, s)))
        for name in sorted(names):
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:  # a dangling link, a file removed meanwhile
                continue
            entries.append((os.path.relpath(path, root), path, stat))
            if len(entries) >= MAX_FILES:
                return entries
    return entries


def _read_cache(cache):
    try:
        saved = read_json(cache) if cache and os.path.exists(cache) else {}
    except CorruptFileError:
        saved = {}  # derived state: rebuilt
    return saved if isinstance(saved, dict) else {}


def file_hashes(entries, root, cache=None):
    """``{path: sha256}`` of ``entries`` (:func:`_listed` of ``root``), reading only the files
    whose path, size, modification time or inode the cache file ``cache`` does not hold (then
    updated: the entries under ``root`` are those seen now, at most :data:`CACHED` others stay)."""
    prefix = os.path.join(root, '')
    saved = _read_cache(cache)
    kept, hashes, todo = {}, {}, []
    for _, path, stat in entries:
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        hit = saved.get(path)
        if isinstance(hit, list) and len(hit) == 4 and hit[:3] == key:
            hashes[path] = hit[3]
            kept[path] = hit
        else:
            todo.append((path, key))
    total = sum(key[0] for _, key in todo)
    with tqdm(total=total, desc='hashing --data', unit='B', unit_scale=True, leave=False,
              disable=None if total > BAR_BYTES else True) as bar:
        for path, key in todo:
            digest = hashlib.sha256()
            try:
                with open(path, 'rb') as handle:
                    for block in iter(lambda: handle.read(2 ** 20), b''):
                        digest.update(block)
                        bar.update(len(block))
            except OSError as error:
                raise OSError(f'--data: cannot read {path} ({error.strerror or error})') \
                    from error
            hashes[path] = digest.hexdigest()
            kept[path] = key + [hashes[path]]
    # the hashes of other folders stay (-e -d on a test set, then -y on the training data)
    others = [(path, value) for path, value in saved.items()
              if path not in kept and not path.startswith(prefix)]
    kept.update(others[-CACHED:])
    if cache and kept != saved:
        write_json(cache, kept)
    return hashes


def data_fingerprint(data_dir, skip=None, cache=None):
    """``{'path', 'files', 'digest', 'listing', 'content'}`` of the files under ``data_dir``.

    ``digest`` covers the relative name, size and SHA-256 of each file, never its path or
    modification time; ``listing`` maps relative names to ``[size, sha256]`` (None above
    :data:`MAX_LISTED` files), to name what changed. At most :data:`MAX_FILES` files are
    visited; folders for which ``skip(path)`` is true are left out. ``cache``: the file that
    keeps the hashes between runs (:func:`file_hashes`).
    """
    root = os.path.realpath(data_dir)
    entries = _listed(root, skip)
    hashes = file_hashes(entries, root, cache)
    named = [(name, stat.st_size, hashes[path]) for name, path, stat in entries]
    digest = hashlib.sha256(repr(named).encode()).hexdigest()
    listing = ({name: [size, sha] for name, size, sha in named}
               if len(named) <= MAX_LISTED else None)
    return {'path': root, 'files': len(named), 'digest': digest, 'listing': listing,
            'content': 'sha256'}


def current(def_path, data_dir, skip=None, cache=None):
    """The identity of a search run now with ``def_path`` and ``data_dir`` (without flags);
    folders under ``data_dir`` for which ``skip(path)`` is true are not data; ``cache``: the
    data's hash cache (:func:`file_hashes`)."""
    definition = definition_digest(def_path)
    definition['sha256'] = file_sha256(def_path)
    return {'model': os.path.abspath(def_path), 'definition': definition,
            'environment': read_environment(def_path),
            'data': data_fingerprint(data_dir, skip, cache)}


def version(definition):
    """The short content hash that names a def.py version in ``search.csv`` (its syntax
    digest: a comment or whitespace edit is the same version)."""
    return definition['digest'][:12] if definition and 'digest' in definition else None


def _names(names, most=4):
    names = sorted(names)
    shown = ', '.join(names[:most])
    return shown + (f' and {len(names) - most} more' if len(names) > most else '')


def definition_changes(saved, now):
    """Names of the def.py's top-level parts that differ (added, removed or edited)."""
    if not saved or 'parts' not in saved:
        return []
    old, new = saved['parts'], now['parts']
    return sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))


def data_moved(saved, now):
    """A line when ``--data`` is another path than the recorded one (not a change: the data
    is compared by content), else None."""
    if saved and saved.get('path') != now['path']:
        return f'--data is {now["path"]} (the search was made with {saved.get("path")})'
    return None


def data_changes(saved, now):
    """What differs under ``--data``, by content, in words (empty when nothing does)."""
    if not saved:
        return []
    old, new = saved.get('listing'), now.get('listing')
    if saved.get('content') != now.get('content'):
        # recorded by an older version (size and modification time): compare names and sizes
        if old is None or new is None:
            return [] if saved.get('files') == now['files'] else [
                f'the files under --data {now["path"]} ({saved["files"]} then, '
                f'{now["files"]} now)']
        old = {name: value[0] for name, value in old.items()}
        new = {name: value[0] for name, value in new.items()}
    elif saved['digest'] == now['digest']:
        return []
    if old is None or new is None:
        return [f'the files under --data {now["path"]} ({saved["files"]} then, '
                f'{now["files"]} now; their contents differ)']
    words = []
    for verb, names in (('added', set(new) - set(old)), ('removed', set(old) - set(new)),
                        ('modified', {n for n in set(old) & set(new) if old[n] != new[n]})):
        if names:
            words.append(f'{verb} {_names(names)}')
    return [f'files under --data {now["path"]}: ' + '; '.join(words)] if words else []


def changes(saved, now, flags=None):
    """Everything that differs between a recorded search and this run, in words.

    Parameters
    ----------
    saved: dict
        ``search.json``.
    now: dict
        :func:`current`, plus the flags in ``flags``.
    flags: dict or None
        ``{name: value}`` of this run's flags (``epoch``, ``eta``, …), compared by name.
    """
    out = [f'--{key.replace("_", "-")} {saved.get(key)} (now {value})'
           for key, value in (flags or {}).items() if saved.get(key) != value]
    parts = definition_changes(saved.get('definition'), now['definition'])
    if parts:
        out.append(f'{now["model"]} ({", ".join(parts)} changed)')
    environment = saved.get('environment', {})
    out += [f'{name}={environment.get(name)!r} (now {value!r})'
            for name, value in now['environment'].items()
            if name in environment and environment[name] != value]
    out += data_changes(saved.get('data'), now['data'])
    return out


def model_changes(saved, now):
    """The changes that make a trained model another one (for ``-e``/``-p``): every part of
    def.py but its loaders and samplers, and the environment it reads."""
    parts = [name for name in definition_changes(saved.get('definition'), now['definition'])
             if name not in LOADERS]
    out = [f'{now["model"]}: {", ".join(parts)} changed'] if parts else []
    environment = saved.get('environment', {})
    out += [f'{name}={environment.get(name)!r} (now {value!r})'
            for name, value in now['environment'].items()
            if name in environment and environment[name] != value]
    return out
