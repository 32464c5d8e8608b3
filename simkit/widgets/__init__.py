"""The explorer: sliders on a scenario, curves that follow (notebooks and the web app).

:func:`explore` opens it in a notebook; :func:`app` is the page ``make app`` serves.
Implemented in :mod:`simkit.widgets.explorer`; :mod:`simkit.widgets.serve` caps the
kernels the served app runs at once.
"""

from .explorer import App, Explorer, ExplorerResult, app, derived_controls, explore

__all__ = ["App", "Explorer", "ExplorerResult", "app", "derived_controls", "explore"]
