"""The one way the tool reads a ``.pt`` file: tensors and plain containers only.

``torch.load(weights_only=True)`` unpickles nothing but tensors, numbers, strings and the
containers that hold them; a file that needs more (a pickled class, a ``__reduce__`` payload)
would run code while loading, and is refused by name: never retried without the guard.
"""
import pickle

from dlutil.errors import CorruptFileError, UnsafeFileError


def load(path, what='checkpoint', map_location='cpu'):
    """The contents of the ``.pt`` file ``path``, loaded with ``weights_only=True``.

    Parameters
    ----------
    path: str
    what: str
        What the file is, for messages ("checkpoint", "--checkpoint", "saved network").
    map_location: str or torch.device

    Raises
    ------
    UnsafeFileError
        The file holds objects other than tensors: loading it would run code.
    CorruptFileError
        The file is truncated or not a PyTorch file.
    FileNotFoundError, PermissionError
        As ``open`` raises them.
    """
    import torch  # heavy: only the commands that read weights pay for it
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except pickle.UnpicklingError as error:
        blocked = [line.strip() for line in str(error).splitlines()
                   if 'unsupported global' in line.lower()]
        if blocked:  # a class or function to call: code would run
            raise UnsafeFileError(
                f'{what} {path} holds Python objects besides tensors, and loading it would run '
                f'their code; refused (only files of tensors and plain values are read): '
                f'{blocked[0]}') from None
        raise CorruptFileError(f'{what} {path} is corrupt or not a PyTorch file '
                               f'(it does not unpickle: {_first_line(error)})') from None
    except Exception as error:
        raise CorruptFileError(f'{what} {path} is corrupt or not a PyTorch file '
                               f'({type(error).__name__}: {_first_line(error)})') from None


def _first_line(error):
    """The line of torch's message that says what is wrong (not its advice)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if line.startswith(('Unsupported', 'Trying', 'invalid'))]
    return (useful or lines or [type(error).__name__])[0]
