"""Imported once, by the forkserver (it is in :data:`dlutil.processes.PRELOAD`): the
server is killed when the search process that started it dies, so no process outlives a killed
search. Its workers die with it in turn (:func:`dlutil.processes.die_with_parent`)."""
import ctypes
import signal

PR_SET_PDEATHSIG = 1

try:
    ctypes.CDLL('libc.so.6', use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
except (OSError, AttributeError):
    pass  # not Linux: the server still ends when its pipe from the search process closes
