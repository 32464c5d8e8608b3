"""The explorer: sliders on a scenario, curves that follow (notebooks and the web app).

:func:`explore` opens it in a notebook; :func:`app` is the page ``make app`` serves;
:func:`build_form` is the guided form that builds a scenario from your dashboard's numbers.
Implemented in :mod:`simkit.widgets.explorer`; :mod:`simkit.widgets.serve` caps the
kernels the served app runs at once.
"""

from .build_form import BuildForm, build_form
from .explorer import App, Explorer, ExplorerResult, app, derived_controls, explore

__all__ = [
    "App",
    "BuildForm",
    "Explorer",
    "ExplorerResult",
    "app",
    "build_form",
    "derived_controls",
    "explore",
]
