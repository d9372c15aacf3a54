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


def write_report(result_dir):
    """Write ``result_dir/report.html`` and the PNG plots in ``result_dir/report/``.

    Parameters
    ----------
    result_dir : str
        A results directory, finished or with a search still running.

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
            images.append((f'{PLOT_DIR}/{name}', title))
    text = page(store.root, search, images)
    path = store.path('report.html')
    results.atomic_write(path, lambda f: f.write(text))
    return path


class BackgroundReport:
    """Keeps ``report.html`` up to date while a search runs, drawing it in a thread.

    A search calls :meth:`update` as it goes (it never waits for a plot) and :meth:`close` at
    the end, which draws the final page and waits for it.

    Parameters
    ----------
    result_dir: str
    every: float
        Seconds between redraws during the search.
    """

    def __init__(self, result_dir, every=30.0):
        self.result_dir, self.every = result_dir, every
        self.thread = None
        self.last = None

    def update(self, states=None, best_trial=None):
        """Redraw in the background if ``every`` seconds have passed since the last one; the
        first call redraws at once when the page is older than ``search.csv`` (a run cut short)."""
        now = time.monotonic()
        if self.last is None:
            self.last = now
            page, csv = (os.path.join(self.result_dir, name)
                         for name in ('report.html', 'search.csv'))
            if os.path.exists(csv) and (not os.path.exists(page)
                                        or os.path.getmtime(page) < os.path.getmtime(csv)):
                self.request()
        elif now - self.last >= self.every:
            self.last = now
            self.request()

    def close(self, states=None, best_trial=None):
        """Draw the final page (after any drawing under way)."""
        if self.thread is not None:
            self.thread.join()
        self.draw()

    def request(self):
        """Draw in a thread, unless one is drawing already; returns at once."""
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self.draw, daemon=True)
            self.thread.start()

    def draw(self):
        """Draw now; a failure is a warning (a report must never cost a search its results)."""
        try:
            write_report(self.result_dir)
        except Exception as error:
            log.warning(f'could not write report.html: {type(error).__name__}: {error}')
