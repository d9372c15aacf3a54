"""Which checkpoints a search keeps (``--keep-checkpoints``), and the disk it uses.

A trial needs its ``last.pt`` (weights, optimizer state, RNG and shuffling state) only while it
may still be promoted: to continue training at the next rung. Once its bracket has moved on
without it (it was not among a rung's survivors, it failed, or its bracket finished) nothing
will train it again, and of its checkpoints only the best epoch's weights are ever read again
(by ``-e``, ``-p`` and ``--interpret``, when it is the best trial). The policies:

``all``
    Keep ``last.pt`` and ``best.pt`` of every trial (resume any trial, inspect its optimizer).
``best`` (default)
    A trial the search is done with keeps ``best.pt`` with the weights alone (optimizer state,
    RNG and shuffling state dropped) and loses ``last.pt``. Trials that may still be promoted
    keep both, so promotion and resuming after a crash work as before.
``none``
    As ``best``, and a trial the search is done with keeps no checkpoint at all unless it is
    the best trial so far; at the end of the search only the best trial's ``best.pt`` remains.

For scale: a DeepSEA checkpoint with Adam state is about 600 MB, its weights alone about
200 MB; a full R = 81 search has 143 trials, of which 5 finish at the last rung of a bracket.
"""
import logging
import os

from dlutil.search import results

log = logging.getLogger('dlutil')

POLICIES = ('all', 'best', 'none')
DEFAULT = 'best'
CHECKPOINTS = ('last.pt', 'best.pt')


def check_policy(policy):
    if policy not in POLICIES:
        raise ValueError(f'--keep-checkpoints must be one of {", ".join(POLICIES)}, '
                         f'got {policy!r}')
    return policy


def done_with(state):
    """Trial ids of a bracket the search will never train again.

    Parameters
    ----------
    state: dlutil.search.brackets.BracketState
        Those not among the current rung's members, or all of them once the bracket finished.
    """
    planned = state.planned
    current = set() if state.finished else set(state.members)
    return [results.trial_id(i) for i in range(planned.first, planned.first + planned.sizes[0])
            if i not in current]


def weights_only(checkpoint):
    """A trial checkpoint without what only further training needs.

    Keeps the network's weights, ``epoch``, ``config``, ``seed``, ``best`` and ``history``; drops
    the optimizer, schedules, RNG and shuffling state (``BaseModel.load_state_dict(state,
    optimizer=False)`` reads what is left).
    """
    slim = {key: value for key, value in checkpoint.items() if key not in ('rng', 'generator')}
    slim['model'] = {'network': checkpoint['model']['network']}
    slim['weights_only'] = True
    return slim


class CheckpointKeeper:
    """Applies a ``--keep-checkpoints`` policy to the trials of one results directory.

    A watcher of :class:`dlutil.search.hyperband.HyperbandSearch`: it trims as the search goes
    (:meth:`update`) and at its end (:meth:`close`).

    Parameters
    ----------
    store: results.ResultStore
    policy: str
        ``'all'``, ``'best'`` or ``'none'``.
    """

    def __init__(self, store, policy=DEFAULT):
        self.store, self.policy = store, check_policy(policy)
        self._released = set()  # trials already trimmed in this run

    def release(self, states, best_trial=None):
        """Trim the checkpoints of every trial the brackets ``states`` are done with."""
        if self.policy == 'all':
            return
        for state in states:
            for trial in done_with(state):
                if trial not in self._released or (self.policy == 'none'
                                                   and trial != best_trial):
                    self._trim(trial, keep_best=self.policy == 'best' or trial == best_trial)
                    self._released.add(trial)

    update = close = release  # what the search calls as it goes, and at its end

    def _trim(self, trial, keep_best):
        last, best = (self.store.trial_file(trial, name) for name in CHECKPOINTS)
        if keep_best:
            if not os.path.exists(best) and os.path.exists(last):
                # a crash between last.pt and its link to best.pt: last.pt may be the best
                checkpoint = results.load_checkpoint(last)
                if checkpoint.get('best', {}).get('epoch') == checkpoint.get('epoch'):
                    results.link_checkpoint(last, best)
            if os.path.exists(best):
                checkpoint = results.load_checkpoint(best)
                if not checkpoint.get('weights_only'):
                    # a new file (the atomic write) also unlinks it from last.pt
                    results.save_checkpoint(best, weights_only(checkpoint))
        elif os.path.exists(best):
            os.remove(best)
        if os.path.exists(last):
            os.remove(last)


def disk_usage(root):
    """Bytes under ``root``, each hard-linked file counted once.

    Returns
    -------
    dict
        ``{'total': int, 'checkpoints': int, 'checkpoint_files': int}``; checkpoints are the
        ``*.pt`` files.
    """
    seen, total, checkpoints, files = set(), 0, 0, 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:  # removed while we walk: a search trimming its checkpoints
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_size
            if name.endswith('.pt'):
                checkpoints += info.st_size
                files += 1
    return {'total': total, 'checkpoints': checkpoints, 'checkpoint_files': files}


def human_bytes(size):
    """``123456789`` -> ``'118 MiB'``."""
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if size < 1024 or unit == 'TiB':
            break
        size /= 1024
    return f'{size:.0f} {unit}' if unit == 'B' or size >= 100 else f'{size:.3g} {unit}'
