"""The search report: ``RESULT_DIR/report.html`` and its plots, readable during a search and after.

``write_report(result_dir)`` reads whatever the results directory holds so far and writes::

    report.html                  settings, best trial, plots and a sortable table of all trials
    report/rewards.png           validation reward against epoch, one line per trial
    report/hyperparameters.png   each trial's best reward against each hyperparameter

Reading (``_data``), the figures (``_plots``) and the page (``_page``) are separate steps.
"""
from dlutil.search.report._data import constants, flatten, read_search
from dlutil.search.report._plots import plot_hyperparameters, plot_rewards
from dlutil.search.report._writer import BackgroundReport, write_report

__all__ = ['BackgroundReport', 'constants', 'flatten', 'plot_hyperparameters', 'plot_rewards',
           'read_search', 'write_report']
