"""Files that are never seen half-written: a temporary file beside the target, then ``os.replace``.

    atomic_write('results/best.json', lambda f: f.write(text))
    tmp = temporary_file('out', 'train.h5')   # fill it (h5py opens it by name), then
    os.replace(tmp, 'out/train.h5')

The temporary name is hidden (``.NAME.xxxx.tmp``), so a glob like ``train.h5*`` never picks up a
half-written file, and it gets the mode ``open()`` would give (``mkstemp`` makes files private).
"""
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's files are private (0600)


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


def atomic_write(path, write, mode='w'):
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then replace ``path``.

    Parameters
    ----------
    path: str
        The file to write; its folder is made when missing.
    write: callable
        Called with the open temporary file; what it writes becomes ``path``.
    mode: {'w', 'wb'}
        Text or binary.

    Nothing is left behind when ``write`` raises (or on Ctrl-C): ``path`` keeps its old content.
    """
    tmp = temporary_file(os.path.dirname(os.path.abspath(path)), os.path.basename(path))
    try:
        with open(tmp, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
