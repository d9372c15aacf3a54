"""What the two command lines share: the name the user started us by, and how an error ends them.

Both ``dlutil`` (``python main.py``) and ``dlutil-prepare`` (``python -m dlutil.prepare``) run
their work through :func:`run_cli`: a known error is one line on stderr and exit status 1,
Ctrl-C exits 130, and ``--debug`` shows the traceback instead.
"""
import os
import sys

from dlutil.errors import StorageError
from dlutil.extras import MissingExtraError

#: the errors a user can cause (bad input, a missing file, a full disk, an optional package not
#: installed): their message is shown as it is; any other exception is shown with its type, as
#: the bug it probably is
KNOWN_ERRORS = (ValueError, TypeError, OSError, NotImplementedError, MissingExtraError)
DEBUG_HINT = '(run with --debug for the traceback)'


def program_name(argv0=None, installed='dlutil', module='dlutil'):
    """How the user started us, for usage lines and hints: ``installed`` (the console script),
    ``python -m module`` or ``python main.py``."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if name == '__main__.py':
        return f'python -m {module}'
    return installed if name == installed else f'python {name or "main.py"}'


def run_cli(work, debug=False, interrupted='interrupted'):
    """Run ``work()`` as a command: its exit status, 1 after an error, 130 after Ctrl-C.

    Parameters
    ----------
    work: callable
        The command; returns an exit status, or None for 0.
    debug: bool
        ``--debug``: let the exception (and its traceback) through.
    interrupted: str
        The line printed on Ctrl-C (what the user can do now).

    Returns
    -------
    int: the exit status. The error is printed as one line, ``error: <message>``, followed by
    :data:`DEBUG_HINT` when the traceback would tell more (see :func:`has_useful_traceback`).
    """
    try:
        code = work()
    except KeyboardInterrupt:
        if debug:
            raise
        _say(interrupted)
        return 130
    except Exception as error:
        if debug:
            raise
        _say(f'error: {error_message(error)}')
        if has_useful_traceback(error):
            _say(DEBUG_HINT)
        return 1
    return 0 if code is None else code


def _say(line):
    """``line`` on stderr, if it is still open: Ctrl-C on ``main.py … | tee log`` ends ``tee``
    too, and a write to its pipe must not turn exit 130 into a traceback and a slow exit."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def error_message(error):
    """What the user reads after ``error:``: our own messages as they are, others typed."""
    if isinstance(error, StorageError) and error.strerror:
        return error.strerror  # without "[Errno 28]": the message says what happened
    known = isinstance(error, KNOWN_ERRORS)
    return str(error) if known and str(error) else f'{type(error).__name__}: {error}'


def has_useful_traceback(error):
    """Whether ``--debug``'s traceback would tell the user more than the message.

    Not for the errors this package raises itself (a flag mismatch, a missing def.py function,
    every trial failed, a full disk: the message says all); yes for one raised from another (a
    def.py function that failed, whose frames are the user's) and for one raised elsewhere
    (torch, numpy, a bug).
    """
    if isinstance(error, StorageError):
        return False
    if error.__cause__ is not None:
        return True
    tb = error.__traceback__
    if tb is None:
        return not isinstance(error, KNOWN_ERRORS)
    while tb.tb_next is not None:
        tb = tb.tb_next
    return not _is_ours(tb.tb_frame.f_code.co_filename)


_OWN_FOLDER = os.path.dirname(os.path.abspath(__file__))


def _is_ours(filename):
    """A file of the dlutil package (where our own ``raise`` statements are)."""
    path = os.path.abspath(filename)
    return os.path.commonpath([path, _OWN_FOLDER]) == _OWN_FOLDER
