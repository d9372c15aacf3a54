"""TensorBoard logs of a search (``--tensorboard``): one run per trial, its curves and its
hyperparameters, so that ``tensorboard --logdir RESULT_DIR`` shows every trial side by side.

The search process writes them, from the ``history.csv`` files the trials write after every
epoch (:mod:`dlutil.search.results`), wherever the trials run (here, in worker processes, in
``--ddp`` groups, on Ray)::

    RESULT_DIR/tensorboard/<trial>/events.out.tfevents.*

Each epoch row becomes scalars at step ``epoch``: ``train_loss`` as ``loss/train``,
``val_auroc`` as ``auroc/validation``, ``hyperband_reward`` as it is; the trial's configuration
(flattened: ``conv.filters``) is its hparams, shown in TensorBoard's HPARAMS tab with the reward
and the validation loss. A trial that trains in this run is written from its first epoch again,
in a new event file that tells TensorBoard to drop the older ones' steps (``purge_step``): an
epoch retrained after a crash, or a search interrupted before its last epochs were logged,
leaves no stale point.
"""
import json
import logging
import os
import threading
import time

from dlutil.extras import require
from dlutil.search import results
from dlutil.search.report import flatten

log = logging.getLogger('dlutil')

FOLDER = 'tensorboard'
SPLITS = (('train_', 'train'), ('val_', 'validation'))


def tag(column):
    """The TensorBoard tag of a history column: ``val_loss`` → ``loss/validation``."""
    for prefix, split in SPLITS:
        if column.startswith(prefix):
            return f'{column[len(prefix):]}/{split}'
    return column


def hparam(value):
    """A configuration value as TensorBoard's hparams take it (numbers, text and bools)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


class TensorBoardLog:
    """A search watcher that writes each trial's TensorBoard run as its epochs are recorded.

    Parameters
    ----------
    result_dir: str
    poll: float
        Seconds between looks at the trials' ``history.csv`` files.
    idle: float
        Seconds after which the event file of a trial that trains no more is closed.
    """

    def __init__(self, result_dir, poll=2.0, idle=120.0):
        require('tensorboard', '--tensorboard')
        from torch.utils.tensorboard import SummaryWriter  # deferred: needs tensorboard
        self.SummaryWriter = SummaryWriter
        self.store = results.ResultStore(result_dir)
        self.root = self.store.path(FOLDER)
        self.poll, self.idle = poll, idle
        self.seen = {}      # trial -> (mtime_ns, size) of the history.csv last read
        self.logged = {}    # trial -> the last epoch written in this run
        self.writers = {}   # trial -> [SummaryWriter, time of its last write]
        self.thread = None
        self.wake, self.done = threading.Event(), threading.Event()

    def update(self, states=None, best_trial=None):
        """The search starts (first call): the thread begins; later (a rung evaluation
        recorded): look at the files now."""
        if self.thread is None:
            log.info(f'TensorBoard: tensorboard --logdir {os.path.abspath(self.store.root)}')
            self.thread = threading.Thread(target=self._follow, name='tensorboard', daemon=True)
            self.thread.start()
        else:
            self.wake.set()

    def close(self, states=None, best_trial=None):
        """Write the last epochs and close every event file."""
        self.stop()

    def stop(self):
        if self.thread is None:
            return
        self.done.set()
        self.wake.set()
        self.thread.join()
        self.thread = None
        try:
            self.scan()
        finally:
            for writer, _ in self.writers.values():
                writer.close()
            self.writers.clear()

    def _follow(self):
        start = True
        while not self.done.is_set():
            try:
                self.scan(start)
            except Exception as error:  # TensorBoard logs must never cost a search its results
                log.warning(f'TensorBoard logs stopped: {type(error).__name__}: {error}')
                return
            start = False
            self.wake.wait(self.poll)
            self.wake.clear()

    def scan(self, start=False):
        """Write the epochs recorded since the last look; ``start``: also every trial that has
        no run yet (``--tensorboard`` turned on for a search that holds results)."""
        folder = self.store.path('trials')
        trials = sorted(e.name for e in os.scandir(folder) if e.is_dir()) \
            if os.path.isdir(folder) else []
        for trial in trials:
            try:
                info = os.stat(self.store.trial_file(trial, 'history.csv'))
            except OSError:
                continue
            stamp = (info.st_mtime_ns, info.st_size)
            if start and os.path.isdir(os.path.join(self.root, trial)):
                self.seen[trial] = stamp  # logged by an earlier run; again when it trains
                continue
            if self.seen.get(trial) != stamp:
                self.seen[trial] = stamp
                self._write(trial, self.store.read_history(trial))
        now = time.monotonic()
        for trial in [t for t, (_, last) in self.writers.items() if now - last > self.idle]:
            self.writers.pop(trial)[0].close()

    def _write(self, trial, rows):
        rows = [row for row in rows if isinstance(row.get('epoch'), int)]
        done = self.logged.get(trial, 0)
        if rows and rows[-1]['epoch'] < done:
            # epochs a crash cut short are trained again: a new file from the last kept one
            done = rows[-1]['epoch'] - 1
            self._close(trial)
        new = [row for row in rows if row['epoch'] > done]
        if not new:
            return
        if trial not in self.writers:
            # the first epoch this run writes: TensorBoard drops the older files' later steps
            first = 1 if trial not in self.logged else new[0]['epoch']
            if first == 1:
                new = rows
            writer = self.SummaryWriter(os.path.join(self.root, trial), purge_step=first)
            self._hparams(writer, trial)
            self.writers[trial] = [writer, time.monotonic()]
        writer = self.writers[trial][0]
        for row in new:
            for column, value in row.items():
                if column != 'epoch' and isinstance(value, (int, float)) \
                        and not isinstance(value, bool):
                    writer.add_scalar(tag(column), value, row['epoch'])
        writer.flush()
        self.writers[trial][1] = time.monotonic()
        self.logged[trial] = new[-1]['epoch']

    def _hparams(self, writer, trial):
        from torch.utils.tensorboard.summary import hparams
        path = self.store.trial_file(trial, 'config.json')
        config = results.read_json(path) if os.path.exists(path) else {}
        values = {name: hparam(value) for name, value in flatten(config).items()}
        # the metrics the HPARAMS tab shows: the last value of these scalars in the run
        for summary in hparams(values, {'hyperband_reward': 0.0, 'loss/validation': 0.0}):
            writer.file_writer.add_summary(summary)

    def _close(self, trial):
        if trial in self.writers:
            self.writers.pop(trial)[0].close()
