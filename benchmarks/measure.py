"""Memory figures of the running process, as the benchmarks report them (Linux ``/proc``)."""


def memory_kib(field):
    """A field of ``/proc/self/status`` in KiB (``VmHWM``: peak resident memory, ``VmRSS``:
    resident now), or None where there is no such file or field."""
    try:
        with open('/proc/self/status') as handle:
            for line in handle:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB (NaN where unknown)."""
    peak = memory_kib('VmHWM')
    return float('nan') if peak is None else peak / 1024
