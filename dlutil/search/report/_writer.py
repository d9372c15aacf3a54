"""Writing the report: once (:func:`write_report`), or in a thread while a search runs."""
import logging
import os
import threading
import time

from dlutil.search import results
from dlutil.search.report._data import read_search
from dlutil.search.report._page import page
from dlutil.search.report._plots import plot_hyperparameters, plot_rewards

log = logging.getLogger('dlutil')

PLOT_DIR = 'report'
RELOAD_SECONDS = 15  # how often a browser reloads the page of a running search
DRAWING_SHARE = 50  # redraws of a running search's page at least 50 times their duration apart


def write_report(result_dir, running=False):
    """Write ``result_dir/report.html`` and the PNG plots in ``result_dir/report/``.

    Parameters
    ----------
    result_dir : str
        A results directory, finished or with a search still running.
    running : bool
        A search is running: the page reloads itself every :data:`RELOAD_SECONDS` seconds.

    Returns
    -------
    str
        The path of ``report.html``.

    Raises
    ------
    FileNotFoundError
        When ``result_dir`` is not a directory. Missing or unreadable files inside it never
        raise: the page shows what there is, and names the files it could not read.
    """
    if not os.path.isdir(result_dir):
        raise FileNotFoundError(f'result_dir {result_dir!r}: no such directory; expected the '
                                '--result directory of a search')
    store = results.ResultStore(result_dir)
    search = read_search(result_dir)
    images = []
    for name, plot, title in (('rewards.png', plot_rewards, 'Validation reward by epoch'),
                              ('hyperparameters.png', plot_hyperparameters,
                               'Best reward against each hyperparameter')):
        figure = plot(search)
        if figure is not None:  # nothing to plot yet
            results.atomic_write(store.path(PLOT_DIR, name),
                                 lambda f, fig=figure: fig.savefig(f, format='png'), mode='wb')
            # a page that reloads names the drawing in the address: the browser fetches it anew
            version = f'?v={time.time_ns()}' if running else ''
            images.append((f'{PLOT_DIR}/{name}{version}', title))
    text = page(store.root, search, images, reload=RELOAD_SECONDS if running else None)
    path = store.path('report.html')
    results.atomic_write(path, lambda f: f.write(text))
    return path


class BackgroundReport:
    """Keeps ``report.html`` up to date while a search runs, drawing it in a thread.

    The thread looks at the results directory every ``poll`` seconds and redraws the page when
    a file it shows has changed (an epoch finished, a rung evaluation recorded), at most every
    ``every`` seconds, and at least :data:`DRAWING_SHARE` times as long as the last drawing took:
    drawing takes a second or more of CPU, and must not slow the training.
    While the search runs the page reloads itself in the browser (:data:`RELOAD_SECONDS`); the
    page drawn when it ends (:meth:`close`, or :meth:`stop` after an interruption or an error)
    does not. The page's path is logged as the search starts and ends.

    A search calls :meth:`update` as it goes (it never waits for a plot) and :meth:`close` at
    the end, which draws the final page and waits for it.

    Parameters
    ----------
    result_dir: str
    every: float
        Least seconds between redraws during the search.
    poll: float
        Seconds between looks at the results directory.
    """

    def __init__(self, result_dir, every=30.0, poll=2.0):
        self.result_dir, self.every, self.poll = result_dir, every, poll
        self.path = os.path.join(os.path.abspath(result_dir), 'report.html')
        self.thread = None
        self.wake, self.done = threading.Event(), threading.Event()
        self.lock = threading.Lock()  # one drawing at a time: the thread's, or the last one

    def update(self, states=None, best_trial=None):
        """The first call (the search starts) draws the page at once, in the background;
        later ones (a rung evaluation recorded) ask for a redraw within ``every`` seconds."""
        if self.thread is None:
            log.info(f'report: {self.path} (it reloads itself while the search runs)')
            self.thread = threading.Thread(target=self._follow, name='report', daemon=True)
            self.thread.start()
        else:
            self.wake.set()

    def close(self, states=None, best_trial=None):
        """Draw the final page (after any drawing under way), without the reload (the search's
        closing lines say where it is)."""
        self.stop()

    def stop(self):
        """End the thread and draw the final page (a search interrupted or stopped by an
        error: the page stops reloading)."""
        if self.thread is None or self.done.is_set():  # never started, or stopped already
            return
        self.done.set()
        self.wake.set()
        self.thread.join()
        self.draw(running=False)

    def _follow(self):
        last, gap = -float('inf'), 0.0
        drawn = None
        while not self.done.is_set():
            seen = changes(self.result_dir)
            if seen != drawn and time.monotonic() - last >= gap:
                last, drawn = time.monotonic(), seen
                self.draw(running=True)
                # a large search's page takes longer to draw: the drawing (in this process,
                # beside the training) takes at most 1/DRAWING_SHARE of the time
                gap = max(self.every, DRAWING_SHARE * (time.monotonic() - last))
            self.wake.wait(self.poll)
            self.wake.clear()

    def draw(self, running=False):
        """Draw now; a failure is a warning (a report must never cost a search its results)."""
        with self.lock:
            try:
                write_report(self.result_dir, running=running)
            except Exception as error:
                log.warning(f'could not write report.html: {type(error).__name__}: {error}')


def changes(result_dir):
    """What the page shows has changed when this has: the size and time of ``search.csv`` and of
    each trial's ``history.csv`` and ``error.txt`` (a few thousand ``stat`` calls at most)."""
    store = results.ResultStore(result_dir)
    paths = [store.search_csv]
    folder = store.path('trials')
    try:
        trials = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    except OSError:  # no trial yet
        trials = []
    paths += [store.trial_file(trial, name) for trial in trials
              for name in ('history.csv', 'error.txt')]
    stamps = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        stamps.append((path, info.st_mtime_ns, info.st_size))
    return stamps
