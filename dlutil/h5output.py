"""HDF5 files written so that a full or failing disk is an error message, never a crash.

    with h5output.create('predictions/x.h5') as f:   # atomic: whole, or not there at all
        f['prediction'] = y

Why not ``h5py.File(tmp, 'w')``: when a write of the HDF5 library fails (``ENOSPC``, ``EIO``,
``EFBIG``), the library is left with metadata it could not flush; closing the file then fails
again, h5py prints an "Exception ignored in ObjectID.__dealloc__" per object it frees, and the
library's own cleanup at ``close()`` or at exit dereferences that broken state: a segmentation
fault (HDF5 2.0, h5py 3.16; seen with ``--vep`` and ``prepare vcf`` on a full disk).

So the library never sees an I/O error. It writes through :class:`_Sink`, a file object (h5py's
``fileobj`` driver) over the temporary file: the first write the disk refuses is recorded, and
from then on the sink keeps what the library writes in memory and reads it back from there, so
the library's view of the file stays whole and it closes cleanly. Writers call :meth:`check`
after each block (the memory held is one block and the chunk cache at most); :meth:`close` raises
the recorded fault as a :class:`StorageError` naming the output, and :mod:`dlutil.files` removes
the temporary file.
"""
import contextlib
import os

import h5py

from dlutil import files


class _Sink:
    """A seekable binary file over ``path`` that never raises on write (see the module)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        self.position = self.size = 0
        self.error = None
        self.held = []  # (offset, bytes) written after the disk refused a write

    def seek(self, offset, whence=os.SEEK_SET):
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def tell(self):
        return self.position

    def write(self, data):
        view = memoryview(data).cast('B')
        done = 0
        if self.error is None:
            try:
                while done < len(view):  # a write may be partial when the disk fills
                    done += os.pwrite(self.fd, view[done:], self.position + done)
            except OSError as error:
                self.error = error
        if done < len(view):
            self.held.append((self.position + done, bytes(view[done:])))
        self.position += len(view)
        self.size = max(self.size, self.position)
        return len(view)

    def read(self, size=-1):
        if size < 0:
            size = max(0, self.size - self.position)
        data = os.pread(self.fd, size, self.position)
        if self.held or len(data) < size:  # past the end of the file on disk: zeros, as sec2
            buffer = bytearray(data) + bytes(size - len(data))
            end = self.position + size
            for offset, chunk in self.held:
                start, stop = max(offset, self.position), min(offset + len(chunk), end)
                if start < stop:
                    buffer[start - self.position:stop - self.position] = \
                        chunk[start - offset:stop - offset]
            data = bytes(buffer)
        self.position += size
        return data

    def truncate(self, size=None):
        size = self.position if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self.fd, size)
            except OSError as error:
                self.error = error
        self.size = size
        return size

    def flush(self):
        pass

    def allocated(self):
        """Bytes of disk the file holds now (freed when it is removed)."""
        try:
            return os.fstat(self.fd).st_blocks * 512
        except (OSError, TypeError):
            return 0

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.held = []


class H5Output:
    """An HDF5 file open for writing at ``tmp`` (a temporary path), reported as ``path``.

    Used as a context manager, it closes the file when the block ends: checked when the block
    ended normally, quietly after an error.

    Attributes
    ----------
    file: h5py.File
        Write to it as to any h5py file; call :meth:`check` after each block.
    """

    def __init__(self, tmp, path, **options):
        self.path = os.fspath(path)
        self.sink = _Sink(tmp)
        try:
            self.file = h5py.File(self.sink, 'w', **options)
        except BaseException:
            self.sink.close()
            raise

    def check(self):
        """Raise the disk fault met so far as a :class:`StorageError` naming the output."""
        if self.sink.error is not None:
            raise files.storage_error(self.sink.error, self.path, written=self.sink.size,
                                      freed=self.sink.allocated())

    def close(self):
        """Close the file; raise the disk fault met while writing it, if any."""
        if self.file is not None:
            try:
                self.file.close()
            finally:
                self.file = None
        try:
            self.check()
        finally:
            self.sink.close()

    def abandon(self):
        """Close the file after an error, raising nothing (the caller removes it)."""
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        self.close() if kind is None else self.abandon()


@contextlib.contextmanager
def create(path, **options):
    """An ``h5py.File`` to fill, written atomically: ``path`` appears whole when the block ends.

    ``options`` go to ``h5py.File``. A disk fault raises :class:`StorageError` naming ``path``
    and leaves no temporary file.
    """
    with files.atomic_path(path) as tmp, H5Output(tmp, path, **options) as output:
        yield output.file
