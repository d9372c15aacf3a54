"""Files that are never seen half-written: a temporary file beside the target, then ``os.replace``.

    atomic_write('results/best.json', lambda f: f.write(text))
    with atomic_path('out/x.png') as tmp:             # a writer that wants a file name
        figure.savefig(tmp)
    with atomic_paths('vep/x.top.tsv', 'vep/x.h5') as (tsv, h5):   # files that go together
        ...

Every file the tool writes by name goes through :func:`atomic_paths` (the two others are short
forms of it; HDF5 files through :mod:`dlutil.h5output`, which uses it too). So, for every output:

- The temporary name is hidden and recognisable, ``.NAME.dlutil-HOST-PID-K.tmp``: a glob like
  ``train.h5*`` never picks up a half-written file, and a later run on the same machine removes
  the ones a killed process (``kill -9``, a crash, a power cut) left in the folders it writes to
  (only files of this pattern whose process is gone; never anything else).
- The file gets the mode ``open()`` gives, from the umask (``mkstemp`` would make it private).
- A fault of the disk (full, quota, read-only, failing) becomes one :class:`StorageError` that
  names the file, says what to free and how much is free, and leaves no temporary file behind.
"""
import contextlib
import csv
import errno
import io
import itertools
import json
import os
import re
import shutil
import socket

from dlutil.errors import StorageError, CorruptFileError  # noqa: F401 (re-exported)

TEMPORARY = '.tmp'  # every temporary file's name ends so (the search sweeps ``.*.tmp``)
_HOST = re.sub(r'[^A-Za-z0-9_]', '_', socket.gethostname().split('.')[0]) or 'host'
_TEMPORARY_NAME = re.compile(r'^\..+\.dlutil-(?P<host>\w+)-(?P<pid>\d+)-\d+' + re.escape(TEMPORARY)
                             + '$')
_serial = itertools.count()  # two writes of one name in one process get two temporaries
_swept = set()  # folders this process has swept already

_before_write = []  # checks run before every write (a worker's "is my parent alive?")


def guard_writes(check):
    """Run ``check()`` before every write of this module in this process."""
    _before_write.append(check)


def temporary_name(path):
    """The hidden temporary name for ``path`` in its folder: ``.NAME.dlutil-HOST-PID-K.tmp``."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(folder, f'.{name}.dlutil-{_HOST}-{os.getpid()}-{next(_serial)}'
                                f'{TEMPORARY}')


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def in_use(path):
    """Whether ``path`` is the temporary file of a process that may still be writing it: its
    name has the pattern of :func:`temporary_name`, and it is another machine's or its process
    is alive."""
    match = _TEMPORARY_NAME.match(os.path.basename(path))
    return bool(match) and (match['host'] != _HOST or _alive(int(match['pid'])))


def sweep_temporaries(folder):
    """Remove the temporary files that dead processes of this machine left in ``folder``.

    Only names of the pattern of :func:`temporary_name` whose host is this machine and whose
    process is gone: a file another running command is writing is never touched, nor any other
    file. Returns the paths removed.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if _TEMPORARY_NAME.match(name) and not in_use(name):
            path = os.path.join(folder, name)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                removed.append(path)
    return removed


def _sweep_once(folder):
    if folder not in _swept:
        sweep_temporaries(folder)
        _swept.add(folder)


class AtomicFiles:
    """Temporary paths for ``paths``, written by the caller, then committed together.

    ``with AtomicFiles(a, b) as (tmp_a, tmp_b):`` commits when the block ends normally and
    abandons when it raises; a writer that keeps its files open across calls keeps the object
    and calls :meth:`commit` or :meth:`abandon` itself.

    Every temporary path is in its target's folder (made when missing); the folder is swept of
    the temporary files dead processes left (:func:`sweep_temporaries`) the first time this
    process writes there.
    """

    def __init__(self, *paths):
        for check in _before_write:
            check()
        self.targets = [os.path.abspath(os.fspath(path)) for path in paths]
        self.temporaries = []
        for target in self.targets:
            folder = os.path.dirname(target)
            os.makedirs(folder, exist_ok=True)
            _sweep_once(folder)
            self.temporaries.append(temporary_name(target))

    def commit(self):
        """Sync every temporary file to disk and rename it onto its target, in this order: the
        last path's old version is removed first, the others are renamed in the order given,
        the last one last. The last path is therefore the one a reader checks: when it is
        there, the others are of the same run."""
        try:
            for tmp in self.temporaries:
                _sync(tmp)
            if len(self.targets) > 1 and os.path.lexists(self.targets[-1]):
                os.remove(self.targets[-1])  # no old "complete" file beside new parts
            for tmp, target in zip(self.temporaries, self.targets):
                os.replace(tmp, target)
        except BaseException as error:
            self.abandon(error)
            raise

    def abandon(self, error=None):
        """Remove the temporary files (the targets stay as they were). When ``error`` is a
        fault of the disk, raise it as a :class:`StorageError` naming the file it hit."""
        found = {tmp: _stat(tmp) for tmp in self.temporaries}
        for tmp in self.temporaries:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        if error is None:
            return
        failed = _failed_target(error, self.temporaries, self.targets, found)
        stat = found[self.temporaries[self.targets.index(failed)]]
        storage = storage_error(error, failed, written=stat and stat.st_size)
        if storage is not None and storage is not error:
            raise storage from error

    def __enter__(self):
        return list(self.temporaries)

    def __exit__(self, kind, error, trace):
        if kind is None:
            self.commit()
        else:
            self.abandon(error)


def atomic_paths(*paths):
    """Temporary paths for ``paths``, committed together when the block ends normally; see
    :class:`AtomicFiles` (this is it: ``with atomic_paths(a, b) as (tmp_a, tmp_b):``)."""
    return AtomicFiles(*paths)


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path to write ``path`` through, renamed onto it when the block ends normally,
    removed when it raises (a disk fault: :class:`StorageError` naming ``path``)."""
    with AtomicFiles(path) as (tmp,):
        yield tmp


def atomic_write(path, write, mode='w'):
    """Call ``write(file)`` on a temporary file beside ``path``, then replace ``path``.

    Text (``mode='w'``) is written as UTF-8. Errors of the file system become
    :class:`StorageError` naming ``path``; the temporary file is removed.
    """
    with atomic_path(path) as tmp:
        encoding = None if 'b' in mode else 'utf-8'
        with open(tmp, mode, encoding=encoding) as handle:
            write(handle)


@contextlib.contextmanager
def scratch_path(path):
    """A temporary path beside ``path`` for intermediate data, removed when the block ends.

    It carries the name of :func:`temporary_name`, so a killed run's scratch file is swept too.
    """
    group = AtomicFiles(path)
    try:
        yield group.temporaries[0]
    except BaseException as error:
        group.abandon(error)
        raise
    group.abandon()


def _sync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stat(path):
    try:
        return os.stat(path)
    except OSError:
        return None


def _failed_target(error, temporaries, targets, found):
    """The target whose write failed: the one the error names, else the one written last."""
    name = getattr(error, 'filename', None)
    for tmp, target in zip(temporaries, targets):
        if name in (tmp, target):
            return target
    started = [(found[tmp].st_mtime_ns, i) for i, tmp in enumerate(temporaries) if found[tmp]]
    return targets[max(started)[1]] if started else targets[0]


# what torch.save says when the file object under it failed (it wraps the OSError)
_WRAPPED_WRITE_FAILURE = ('file write failed', 'No space left', 'unexpected pos',
                          'Disk quota', 'Read-only file system', 'Errno')
_FULL = (errno.ENOSPC, errno.EDQUOT)


def storage_error(error, path, written=None, freed=0):
    """``error`` as a :class:`StorageError` naming ``path``, or None if it is not a disk fault.

    ``written``: bytes of ``path`` written when it failed, if known (said in the message);
    ``freed``: bytes that removing the temporary file will free (counted as free).
    ``torch.save`` raises a ``RuntimeError`` ("PytorchStreamWriter failed writing file …: file
    write failed") when the disk fills under it; that is a disk fault too.
    """
    if isinstance(error, StorageError):
        return error
    if isinstance(error, OSError) and not isinstance(error, (FileNotFoundError,
                                                              InterruptedError)):
        code = error.errno
    elif isinstance(error, RuntimeError) and any(
            text in str(error) for text in _WRAPPED_WRITE_FAILURE):
        cause = error.__context__ or error.__cause__
        code = getattr(cause, 'errno', None) or (errno.ENOSPC if 'No space' in str(error)
                                                 else None)
    else:
        return None
    return StorageError(code or errno.EIO,
                        _storage_message(code, os.fspath(path), written, freed, error))


def _storage_message(code, path, written, freed, error):
    folder = os.path.dirname(os.path.abspath(path))
    again = 'run the same command again'
    if code in _FULL:
        need = f'needs more than {_mb(written)}; ' if written else ''
        return (f'disk full while writing {path} ({need}{_free(folder, freed)}): free space '
                f'and {again}')
    if code is None:  # a short write (numpy), or torch.save's wrapped failure: not said which
        return (f'disk full or failing while writing {path} ({str(error).strip()[-60:]}; '
                f'{_free(folder, freed)}): free space or check the disk, then {again}')
    if code == errno.EFBIG:
        return (f'cannot write {path}: the file would be larger than this system allows '
                f'(the file size limit, ulimit -f, or the file system\'s largest file); raise '
                f'the limit or write elsewhere, then {again}')
    if code == errno.EIO:
        return (f'input/output error while writing {path}: the disk or network file system '
                f'under {_mount(folder)} is failing or went away; check it, then {again}')
    if code == errno.EROFS:
        return f'cannot write {path}: {_mount(folder)} is mounted read-only'
    if code in (errno.EACCES, errno.EPERM):
        return f'cannot write {path}: permission denied; make {folder} writable, then {again}'
    return f'cannot write {path}: {os.strerror(code)}; fix it, then {again}'


def _mb(size):
    return f'{size / 2 ** 20:.1f} MB'


def _mount(folder):
    path = folder
    while not os.path.ismount(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _free(folder, freed=0):
    try:
        return f'{_mb(shutil.disk_usage(folder).free + freed)} free on {_mount(folder)}'
    except OSError:
        return f'free space on {_mount(folder)} unknown'


def write_json(path, obj):
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
    atomic_write(path, lambda f: f.write(text + '\n'))


def _json_default(value):
    if hasattr(value, 'item'):  # numpy scalars in a user's config
        return value.item()
    if hasattr(value, 'tolist'):
        return value.tolist()
    raise TypeError(f'{type(value).__name__} is not JSON-serialisable')


def read_json(path):
    """The JSON in ``path``; :class:`CorruptFileError` naming it when it does not parse."""
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptFileError(f'{path} is corrupt ({error}); it is not the JSON this tool '
                               f'wrote. Restore it or move it away') from error


def write_csv(path, rows, columns):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in columns})
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _cell(value):
    if value is None:
        return ''
    if isinstance(value, float):
        return repr(float(value))  # round-trips exactly (and np.float64 prints as a number)
    return value
