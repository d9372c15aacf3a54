"""Files that are never seen half-written: a temporary file beside the target, then ``os.replace``.

    atomic_write('results/best.json', lambda f: f.write(text))
    tmp = temporary_file('out', 'train.h5')   # fill it (h5py opens it by name), then
    os.replace(tmp, 'out/train.h5')

The temporary name is hidden (``.NAME.xxxx.tmp``), so a glob like ``train.h5*`` never picks up a
half-written file, and it gets the mode ``open()`` would give (``mkstemp`` makes files private).
"""
import csv
import errno
import io
import json
import os
import tempfile
from dlutil.errors import StorageError, CorruptFileError  # noqa: F401 (re-exported)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's files are private (0600)


_before_write = []  # checks run before every write (a worker's "is my parent alive?")


def guard_writes(check):
    """Run ``check()`` before every :func:`atomic_write` in this process."""
    _before_write.append(check)


def atomic_write(path, write, mode='w'):
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then replace ``path``.

    Text (``mode='w'``) is written as UTF-8. Errors of the file system become
    :class:`StorageError` naming ``path``; the temporary file is removed.
    """
    for check in _before_write:
        check()
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.',
                                   suffix=TEMPORARY)
        os.chmod(tmp, FILE_MODE)
        encoding = None if 'b' in mode else 'utf-8'
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        storage = storage_error(error, path)
        if storage is not None:
            raise storage from error
        raise


TEMPORARY = '.tmp'
# what torch.save says when the file object under it failed (it wraps the OSError)
_WRAPPED_WRITE_FAILURE = ('file write failed', 'No space left', 'unexpected pos',
                          'Disk quota', 'Read-only file system', 'Errno')


def storage_error(error, path):
    """``error`` as a :class:`StorageError` naming ``path``, or None if it is not a disk fault.

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
        code = getattr(cause, 'errno', None) or errno.EIO
    else:
        return None
    reason = os.strerror(code) if code else str(error)
    if isinstance(error, RuntimeError) and code == errno.EIO:
        reason = f'the disk is full or failing (torch.save: {str(error).strip()[-80:]})'

    return StorageError(code, f'cannot write {path}: {reason}. Free some space (or fix the '
                              f'permissions), then re-run the same command to continue')


def temporary_file(folder, name):
    """A new, empty, hidden file ``folder/.NAME.*.tmp`` with a normal file's mode; its path.

    ``folder`` is made when it does not exist. The caller fills the file and either moves it into
    place with ``os.replace`` (same folder, so the rename is atomic) or removes it.
    """
    os.makedirs(folder, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=folder, prefix=f'.{name}.', suffix='.tmp')
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path


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
