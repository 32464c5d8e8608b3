"""Error types: every problem with user input becomes one readable line."""

from __future__ import annotations

__all__ = ["DataError", "ScenarioError", "ScenarioWarning", "SimkitError"]


class SimkitError(Exception):
    """Base class for errors caused by user input (scenario files, data, arguments).

    The command line prints ``str(error)`` on one line and exits with status 2.
    """


class ScenarioError(SimkitError):
    """A scenario file is malformed.

    Parameters
    ----------
    source : str
        The file (or ``"<scenario>"`` for in-memory data).
    path : str
        Where inside it, e.g. ``outputs[2].day`` (empty for the whole file).
    message : str
        What was expected.
    more : int
        How many further problems were found after this one.
    """

    def __init__(self, source: str, path: str, message: str, more: int = 0) -> None:
        self.source = source
        self.path = path
        self.message = message
        self.more = more
        super().__init__(str(self))

    def __reduce__(  # picklable, so it crosses process and Dask boundaries
        self,
    ) -> tuple[type[ScenarioError], tuple[str, str, str, int]]:
        """Rebuild the error from its source, path, message and count of further problems."""
        return (type(self), (self.source, self.path, self.message, self.more))

    def __str__(self) -> str:
        """Return the one-line message: ``source: path: message (and N more problems)``."""
        where = f"{self.source}: {self.path}: " if self.path else f"{self.source}: "
        tail = f" (and {self.more} more problem{'s' if self.more > 1 else ''})" if self.more else ""
        return f"{where}{self.message}{tail}"


class DataError(ScenarioError):
    """A data file (a cohort table or an event log) is malformed.

    ``source`` is the file, ``path`` where inside it (``line 17``, ``cohort 2025-01-06,
    period 3``) and ``message`` what was expected; printed as one line like a
    :class:`ScenarioError`.
    """


class ScenarioWarning(UserWarning):
    """Advice about a scenario that is valid but unusual (e.g. an objective with one key result).

    The command line prints it as one line, ``simkit: warning: source: path: message``.
    """

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        self.message = message
        super().__init__(f"{source}: {path}: {message}" if path else f"{source}: {message}")
