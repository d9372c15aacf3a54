"""defiNETti's Gaussian simulator: infer the mean and standard deviation of 100 draws."""
import numpy as np

INPUT_SHAPE = (100, 1)   # 100 exchangeable draws, one value each
OUTPUT_SHAPE = (2,)      # (μ, σ)
PRIOR_MEAN = np.array([5 / 15, 8.0])       # E[Beta(5, 10)], E[U(6, 10)]


def simulator_gaussian():
    """μ ~ Beta(5, 10), σ ~ U(6, 10); data: 100 draws of N(μ, σ²), shape (100, 1); label (μ, σ)."""
    mu = np.random.beta(5, 10)
    sigma = np.random.uniform(6, 10)
    data = np.random.normal(mu, sigma, (100, 1))
    label = np.array([mu, sigma])
    return data, label
