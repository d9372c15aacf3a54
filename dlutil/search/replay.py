"""Whether changed files would alter a search's finished results: a few finished rung evaluations
trained again with them, compared with what they recorded.

A search that holds finished rung evaluations continues with a changed def.py, environment or
data only when the results cannot tell the new files from the old: the :data:`REPLAYS` cheapest
finished evaluations (the fewest epochs; the lowest trial ids on a tie) are trained again from
scratch in a scratch folder, and their histories (every metric of every epoch, the
``*_seconds`` timings aside) must be the recorded ones: to the bit on the CPU in one process
(the search's results are bit-identical there), to a relative 1e-4 on a GPU or with ``--ddp``,
whose arithmetic varies in the last bits from run to run. A fix for the configurations that
failed passes (the replayed ones did not fail); a change to the network, the optimizer, the
metrics or the data the loaders read does not.

It is evidence, not proof: a change that reaches only configurations unlike the replayed ones
goes unseen. ``--keep-results`` skips the check (the user vouches for the change), and
``--restart`` starts afresh.
"""
import logging
import math
import shutil

from dlutil import rng
from dlutil.search import results
from dlutil.search.executors import Job, TrialData, run_job

log = logging.getLogger('dlutil')

REPLAYS = 2       # finished rung evaluations trained again
SCRATCH = '.replay'  # the scratch folder, inside the results directory, removed afterwards
TOLERANCE = 1e-4  # relative, where results vary in the last bits (GPU, --ddp)


def candidates(rows, most=REPLAYS):
    """The ``most`` cheapest ``ok`` rows: the fewest epochs, then the lowest trial id."""
    ok = sorted((row for row in rows if row['status'] == 'ok'),
                key=lambda row: (row['epochs'], row['trial']))
    return ok[:most]


def _same(then, now, exact):
    if then == now:
        return True
    numbers = (int, float)
    if isinstance(then, numbers) and isinstance(now, numbers):
        if math.isnan(then) and math.isnan(now):
            return True
        return not exact and math.isclose(then, now, rel_tol=TOLERANCE, abs_tol=1e-12)
    return False


def difference(then, now, epochs, exact=True):
    """The first difference between two histories' first ``epochs`` epochs, in words; None
    when they are the same (timings aside)."""
    then, now = then[:epochs], now[:epochs]
    for old, new in zip(then, now):
        for key in sorted(set(old) | set(new)):
            if key.endswith('_seconds'):
                continue
            if not _same(old.get(key), new.get(key), exact):
                return f'epoch {old["epoch"]}: {key} {old.get(key)!r} then, {new.get(key)!r} now'
    if len(then) != len(now):
        return f'{len(then)} epochs trained then, {len(now)} now'
    return None


def replay(definition, store, rows, settings, trial_seed):
    """Train the :func:`candidates` of ``rows`` again with ``definition`` and the data now.

    Parameters
    ----------
    definition: dlutil.definition.Definition
    store: results.ResultStore
        The search; nothing in it is written but the scratch folder, removed afterwards.
    rows: iterable of dict
        ``search.csv`` rows.
    settings: dlutil.search.settings.SearchSettings
        With its seed chosen.
    trial_seed: callable
        Trial index -> seed, as the search trains it.

    Returns
    -------
    ``(trial, what differs)`` for the first replayed evaluation that differs, else None.
    """
    scratch = results.ResultStore(store.path(SCRATCH))
    shutil.rmtree(scratch.root, ignore_errors=True)
    data = TrialData(definition, settings.data_dir, settings.batch_size,
                     rng.data_seed(settings.seed))
    device = settings.device or 'cpu'
    exact = str(device).startswith('cpu') and settings.ddp == 1
    try:
        for row in candidates(rows):
            trial = row['trial']
            index = int(trial.lstrip('t'))
            epochs = f'{row["epochs"]} epoch' + ('s' if row['epochs'] != 1 else '')
            log.info(f'training trial {trial} again to {epochs} with the new files, to compare '
                     f'with its results')
            job = Job(index, trial, store.read_config(trial), trial_seed(index), row['epochs'])
            outcome = run_job(definition, data, scratch, job, device, settings.batch_size)
            if outcome['status'] == 'error':
                return trial, f'it fails now ({outcome["message"]})'
            found = difference(store.read_history(trial), scratch.read_history(trial),
                               row['epochs'], exact)
            if found is not None:
                return trial, found
        return None
    finally:
        shutil.rmtree(scratch.root, ignore_errors=True)
