"""The simple baseline: windowed allele-frequency naive Bayes.

Each ancestry's ALT-allele frequency at every variant is counted in the reference panel (with a
pseudo-count of 1/2 on each allele); a query haplotype's window of ``window`` consecutive variants
is called the ancestry under which its alleles are most likely, variants treated as independent
(missing alleles left out), and every variant of the window gets that call.
"""
import numpy as np

from dlutil.genotypes.h5 import MISSING


class WindowedNaiveBayes:
    """Allele frequencies per ancestry, and windowed maximum-likelihood calls.

    Parameters
    ----------
    n_classes: int
    pseudo_count: float
        Added to the REF and ALT counts of every ancestry and variant.
    """

    def __init__(self, n_classes, pseudo_count=0.5):
        self.n_classes, self.pseudo_count = int(n_classes), float(pseudo_count)
        self.alt = self.total = None

    def update(self, x, labels):
        """Count the alleles of reference haplotypes.

        Parameters
        ----------
        x: numpy.ndarray, uint8, shape=(n, variants)
        labels: numpy.ndarray, int, shape=(n,)
            One ancestry per haplotype.
        """
        if self.alt is None:
            self.alt = np.zeros((self.n_classes, x.shape[1]))
            self.total = np.zeros((self.n_classes, x.shape[1]))
        known = x != MISSING
        for c in range(self.n_classes):
            rows = labels == c
            self.alt[c] += ((x[rows] == 1) & known[rows]).sum(axis=0)
            self.total[c] += known[rows].sum(axis=0)
        return self

    def log_frequencies(self):
        """log P(allele | ancestry): two arrays (ref, alt), shape=(n_classes, variants)."""
        p = (self.alt + self.pseudo_count) / (self.total + 2 * self.pseudo_count)
        return np.log1p(-p), np.log(p)

    def predict(self, x, window):
        """Calls, int shape=(n, variants), for haplotypes ``x`` (n, variants) in windows."""
        log_ref, log_alt = self.log_frequencies()
        n, length = x.shape
        # log-likelihood per variant and ancestry: (n, classes, variants); missing adds 0
        ll = ((x == 0)[:, None, :] * log_ref[None] + (x == 1)[:, None, :] * log_alt[None])
        n_windows = -(-length // window)
        padded = np.zeros((n, self.n_classes, n_windows * window))
        padded[:, :, :length] = ll
        per_window = padded.reshape(n, self.n_classes, n_windows, window).sum(axis=3)
        calls = per_window.argmax(axis=1)  # (n, windows)
        return np.repeat(calls, window, axis=1)[:, :length]


__all__ = ['WindowedNaiveBayes']
