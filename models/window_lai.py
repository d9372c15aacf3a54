"""A window-based network for local ancestry: position-specific base classifiers, then a smoother.

A facade of :mod:`dlutil.models.window_lai` (the same objects).
"""
from dlutil.models.window_lai import (WINDOW_DEFAULTS, WindowLAI)
