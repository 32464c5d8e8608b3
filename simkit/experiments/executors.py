"""Where the runs of an ensemble are computed: in this process, in local processes, on Dask.

Execution is injected, as in the EMA Workbench's evaluators: :func:`simkit.ensemble` and
:func:`simkit.okr.stress_test` hand independent tasks (a module-level function and
picklable arguments) to an executor and read the results back. The model never knows
where it ran, and a result does not depend on it: every run carries its own seed, so the
same ensemble seed gives identical numbers with any executor and any number of workers.

An executor is a context manager with a :mod:`concurrent.futures` interface:
``submit(fn, *args)`` returns a :class:`concurrent.futures.Future`, ``map(fn, items)``
returns the results in order and ``workers`` is how many tasks run at once.

:func:`map_runs` is the one way simkit runs many simulations: ensembles (and through them
the OKR searches and sensitivity designs), the two arms of a counterfactual
(:func:`simkit.analysis.run_many`), calibration candidates and ``Executor.map`` all hand
their tasks to it. It keeps a bounded number of tasks in flight, hands each result to a
callback as it arrives and returns them in task order. Entering starts the workers
(a process pool, a Dask client), leaving stops them; nested ``with`` blocks reuse them, so
one pool serves a whole stress test::

    with LocalProcesses(4) as ex:
        ens = simkit.ensemble("ridehailing_duopoly", runs=200, seed=1, executor=ex)
        okr = simkit.okr.stress_test("ridehailing_duopoly", runs=200, seed=1, executor=ex)

Specs accepted wherever an executor is (``executor=`` and ``simkit okr --executor``):

============================  =============================================================
``"inline"``                  :class:`InProcess`: this process, one task after another
``"processes"``,              :class:`LocalProcesses`: N worker processes (default: the
``"processes:N"``, ``N``      CPUs this process may use)
``"dask://host:port"``        :class:`Dask`: the Dask scheduler at that address (``tcp://``,
                              ``tls://`` and ``ws://`` addresses are taken as they are)
``"dask-local:N"``            :class:`Dask`: a ``distributed.LocalCluster`` of N
                              single-threaded worker processes, started and closed here
a ``distributed.Client``      :class:`Dask` on that client (left open)
a ``concurrent.futures``      used as it is (left running)
``Executor``
``None``                      local processes when there is more than one run, else inline
============================  =============================================================

Local processes are started with the ``forkserver`` method where it exists (Linux; the
default from Python 3.14: safe in a process with threads, unlike ``fork``) and ``spawn``
elsewhere, through a context passed to the pool: the process-wide start method is never
changed. The fork server imports simkit once, so later pools start in milliseconds. As
with any process pool, a script that starts one must guard its entry point with
``if __name__ == "__main__":``; a script that does not is told so in one line before any
process starts.

Nothing is left running: the workers and the fork server end with the process that
started them however it ends (exit, Ctrl-C, SIGTERM, SIGKILL). Each worker watches that
process (a pidfd on Linux, else its pid) and the fork server, its child, asks Linux to be
killed with it (``PR_SET_PDEATHSIG``); multiprocessing's resource tracker then ends by
itself.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool

from ..errors import SimkitError

__all__ = [
    "Executor",
    "InProcess",
    "LocalProcesses",
    "Dask",
    "as_executor",
    "available_cpus",
    "map_runs",
    "WorkerLost",
]

SPEC_HELP = "inline, processes, processes:N, dask-local:N or dask://host:port"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class Executor:
    """Base class: a context manager that computes tasks somewhere.

    Subclasses implement :meth:`_start`, :meth:`_stop` and :meth:`_submit`. ``submit``
    starts the workers on first use if the executor was not entered; :meth:`close`
    stops them.
    """

    name = "executor"

    def __init__(self) -> None:
        self._depth = 0
        self._started = False
        self.workers = 1

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Executor:
        """Start the workers (on the outermost ``with`` only) and return the executor."""
        if self._depth == 0 and not self._started:
            self._start()
            self._started = True
        self._depth += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        """Close on leaving the outermost ``with``, cancelling queued tasks after an error.

        Returns False: an exception raised inside the block propagates.
        """
        self._depth = max(0, self._depth - 1)
        if self._depth == 0:
            self.close(cancel=exc_type is not None)
        return False

    def close(self, cancel: bool = False) -> None:
        """Stop the workers (``cancel``: drop queued tasks and stop at once)."""
        if self._started:
            self._started = False
            self._stop(cancel)

    def _start(self) -> None:  # pragma: no cover - trivial in subclasses
        pass

    def _stop(self, cancel: bool) -> None:  # pragma: no cover - trivial in subclasses
        pass

    # -- work -----------------------------------------------------------------------------
    def submit(self, fn: Callable, /, *args) -> cf.Future:
        """Schedule ``fn(*args)``; returns a :class:`concurrent.futures.Future`."""
        if not self._started:
            self._start()
            self._started = True
        return self._submit(fn, *args)

    def _submit(self, fn: Callable, *args) -> cf.Future:  # pragma: no cover - abstract
        raise NotImplementedError

    def map(self, fn: Callable, iterable: Iterable) -> list:
        """Compute ``[fn(x) for x in iterable]`` with the workers, in order (:func:`map_runs`)."""
        return map_runs(self, fn, list(iterable))

    def __repr__(self) -> str:
        """Return ``<Class name, N worker(s)>``."""
        return f"<{type(self).__name__} {self.name}, {self.workers} worker(s)>"


class InProcess(Executor):
    """Every task in this process, at once when submitted (debugging, tests, small jobs)."""

    name = "inline"

    def _submit(self, fn: Callable, *args) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # KeyboardInterrupt and SystemExit propagate
            future.set_exception(exc)
        return future


def _preload_simkit(ctx) -> None:
    """Let the fork server import simkit once, so that its workers start in milliseconds.

    Importing simkit and its dependencies takes seconds. Only the server's preload list
    changes, and only before the server first starts; the start method is untouched.
    """
    from multiprocessing import forkserver

    current = list(
        getattr(getattr(forkserver, "_forkserver", None), "_preload_modules", None) or ["__main__"]
    )
    if "simkit.experiments.ensemble" not in current:
        ctx.set_forkserver_preload([*current, "simkit.experiments.ensemble"])


def _worker_init(driver: int) -> None:
    """Start a worker: one thread per run (workers run side by side), and die with the driver."""
    os.environ["SIMKIT_THREADS"] = "1"
    _exit_with(driver)


# --- nothing left running -------------------------------------------------------------------
# Every process simkit starts ends with the process that started it (the *driver*), however
# that one ends: an exit, Ctrl-C, SIGTERM or SIGKILL. Workers watch the driver (a thread
# blocked on a pidfd, or polling its pid); the fork server, a child of the driver, asks Linux
# for SIGKILL when its parent dies (PR_SET_PDEATHSIG); multiprocessing's resource tracker
# ends by itself once every process holding its pipe has ended.

_DRIVER_ENV = "SIMKIT_FORKSERVER_DRIVER"


def _exit_with(pid: int) -> None:
    """End this process when process ``pid`` ends (a daemon thread watches it)."""
    import threading

    try:
        fd: int | None = os.pidfd_open(pid)  # Linux >= 5.3: readable once pid has ended
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        fd = None

    def watch() -> None:
        if fd is not None:
            import select

            select.select([fd], [], [])
        else:  # pragma: no cover - other systems: poll
            import time

            while True:
                time.sleep(0.5)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
        os._exit(1)

    threading.Thread(target=watch, name="simkit-exit-with-driver", daemon=True).start()


def _die_with_parent() -> None:
    """In the fork server (a child of the driver, importing simkit): die with the driver.

    Only where the driver asked for it (its pid in the environment is this process's parent).
    """
    if os.environ.get(_DRIVER_ENV) != str(os.getppid()):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        if os.environ.get(_DRIVER_ENV) != str(os.getppid()):  # it ended before the request
            os._exit(1)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


_die_with_parent()


def _start_fork_server(ctx) -> None:
    """Start the fork server now (not on the first task), as a child that dies with this process."""
    from multiprocessing import forkserver

    saved = os.environ.get(_DRIVER_ENV)
    os.environ[_DRIVER_ENV] = str(os.getpid())
    try:
        forkserver.ensure_running()
    finally:
        if saved is None:
            os.environ.pop(_DRIVER_ENV, None)
        else:
            os.environ[_DRIVER_ENV] = saved


# --- scripts without a main guard ---------------------------------------------------------

UNGUARDED = (
    "{where}this call at the script's top level starts worker processes, and each would run "
    'the script again: put it under if __name__ == "__main__": (or use executor="inline")'
)


def _unguarded_call() -> str | None:
    """Where the running script calls simkit at its top level outside a main guard, if it does.

    Worker processes started by ``spawn`` or ``forkserver`` import the main script again
    (as ``__mp_main__``): an unguarded top-level call would start workers in every worker.
    Found from the script's frame on the stack and its source: the line the top level is
    at must be inside ``if __name__ == "__main__":``. Returns ``"file:line: "`` or None.
    """
    import ast
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return None  # interactive, -c, Jupyter: workers do not import a script
    name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if name == "__main__" or name.endswith(".__main__"):
        return None  # python -m package: multiprocessing does not import it again
    frame = sys._getframe(1)
    line = None
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is vars(main):
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return None  # not called from the script's top level (e.g. from a thread)
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test):
            end = getattr(node, "end_lineno", None) or node.lineno
            if node.lineno <= line <= end:
                return None
    return f"{os.path.basename(path)}:{line}: "


def _is_main_test(test: object) -> bool:
    import ast

    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [x for x in sides if isinstance(x, ast.Name) and x.id == "__name__"]
    values = [x for x in sides if isinstance(x, ast.Constant) and x.value == "__main__"]
    return bool(names and values)


def _refuse_unguarded() -> None:
    where = _unguarded_call()
    if where is not None:
        raise SimkitError(UNGUARDED.format(where=where))


class LocalProcesses(Executor):
    """A pool of worker processes on this machine (:class:`concurrent.futures.ProcessPoolExecutor`).

    Parameters
    ----------
    workers : int, optional
        Processes (default: :func:`available_cpus`).
    start_method : {"forkserver", "spawn", "fork"}, optional
        How workers start (default ``forkserver`` where available, else ``spawn``); it is
        given to this pool only, never set for the whole process.
    """

    def __init__(self, workers: int | None = None, start_method: str | None = None):
        super().__init__()
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise SimkitError(f"workers must be a whole number >= 1, got {workers!r}")
        methods = multiprocessing.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in methods:
            raise SimkitError(
                f"unknown start method '{start_method}' (expected one of: {', '.join(methods)})"
            )
        self.workers = workers or available_cpus()
        self.start_method = start_method
        self.name = f"processes:{self.workers}"
        self._pool: cf.ProcessPoolExecutor | None = None

    def _start(self) -> None:
        if self.start_method != "fork":
            _refuse_unguarded()
        ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            _preload_simkit(ctx)
            _start_fork_server(ctx)
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )

    def _submit(self, fn: Callable, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def _stop(self, cancel: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            # interrupted: drop the queue and stop the workers now rather than after
            # their current task (their results would be thrown away anyway)
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                if p.is_alive():
                    p.terminate()
            for p in processes:
                p.join(timeout=5)
        else:
            pool.shutdown(wait=True)


class Dask(Executor):
    """Tasks on a Dask cluster (:mod:`distributed`), through ``Client.get_executor``.

    Give one of ``address`` (a running scheduler), ``client`` (left open) or
    ``local_workers`` (a ``LocalCluster`` of that many single-threaded worker processes,
    without a dashboard, started on entry and closed on exit). The workers need simkit
    installed (a LocalCluster shares this environment).
    """

    def __init__(
        self, address: str | None = None, *, client=None, local_workers: int | None = None
    ):
        super().__init__()
        given = sum(x is not None for x in (address, client, local_workers))
        if given != 1:
            raise SimkitError("Dask: give exactly one of address, client or local_workers")
        if local_workers is not None and (
            isinstance(local_workers, bool)
            or not isinstance(local_workers, int)
            or local_workers < 1
        ):
            raise SimkitError(f"local_workers must be a whole number >= 1, got {local_workers!r}")
        self.address = address
        self.local_workers = local_workers
        self._given_client = client
        self._client = client
        self._cluster = None
        self._executor = None
        self.name = f"dask-local:{local_workers}" if local_workers else (address or "dask client")
        self.workers = local_workers or 1

    @property
    def client(self):
        """The ``distributed.Client`` (while started)."""
        return self._client

    def _start(self) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - pinned dependency
            raise SimkitError("the Dask executor needs the 'distributed' package") from None
        if self._given_client is None:
            if self.local_workers:
                _refuse_unguarded()
            try:
                if self.local_workers:
                    self._cluster = LocalCluster(
                        n_workers=self.local_workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                    )
                    self._client = Client(self._cluster)
                else:
                    self._client = Client(self.address, timeout="20s")
            except OSError as exc:
                raise SimkitError(
                    f"cannot connect to the Dask scheduler at {self.address}: {exc}"
                ) from None
        self._executor = self._client.get_executor(pure=False)
        info = self._client.scheduler_info()
        threads = sum(w.get("nthreads", 1) for w in info.get("workers", {}).values())
        self.workers = max(1, threads)

    def _submit(self, fn: Callable, *args) -> cf.Future:
        return self._executor.submit(fn, *args)

    def _stop(self, cancel: bool) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=not cancel)
            self._executor = None
        if self._given_client is None:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None


class _Borrowed(Executor):
    """A :class:`concurrent.futures.Executor` made by the caller: used, never shut down."""

    def __init__(self, executor: cf.Executor):
        super().__init__()
        self._executor = executor
        self.workers = int(getattr(executor, "_max_workers", None) or 1)
        self.name = type(executor).__name__

    def _submit(self, fn: Callable, *args) -> cf.Future:
        return self._executor.submit(fn, *args)


def _positive(text: str, spec: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise SimkitError(f"executor '{spec}': expected a number of workers >= 1 after ':'")
    return n


def as_executor(spec=None, *, runs: int | None = None) -> Executor:
    """Return the executor for ``spec`` (see the module docstring for the accepted forms).

    ``spec=None`` gives :class:`LocalProcesses` when ``runs`` > 1, else :class:`InProcess`.
    """
    if spec is None:
        return LocalProcesses() if (runs or 0) > 1 else InProcess()
    if isinstance(spec, Executor):
        return spec
    if isinstance(spec, bool):
        raise SimkitError(f"unknown executor {spec!r} (expected {SPEC_HELP})")
    if isinstance(spec, int):
        return LocalProcesses(spec)
    if isinstance(spec, str):
        s = spec.strip()
        low = s.lower()
        if low in ("inline", "in-process", "sequential", "serial"):
            return InProcess()
        if low == "processes":
            return LocalProcesses()
        if low.startswith("processes:"):
            return LocalProcesses(_positive(s.split(":", 1)[1], spec))
        if low == "dask-local":
            return Dask(local_workers=available_cpus())
        if low.startswith("dask-local:"):
            return Dask(local_workers=_positive(s.split(":", 1)[1], spec))
        if low.startswith("dask://"):
            rest = s[len("dask://") :]
            if not rest:
                raise SimkitError(f"executor '{spec}': expected dask://host:port")
            return Dask("tcp://" + rest)
        if low.startswith(("tcp://", "tls://", "ws://", "wss://", "inproc://")):
            return Dask(s)
        raise SimkitError(f"unknown executor '{spec}' (expected {SPEC_HELP})")
    if type(spec).__module__.startswith("distributed") and hasattr(spec, "get_executor"):
        return Dask(client=spec)
    if isinstance(spec, cf.Executor):
        return _Borrowed(spec)
    raise SimkitError(f"unknown executor {type(spec).__name__} (expected {SPEC_HELP})")


class WorkerLost(SimkitError):
    """A worker process died under a task (killed, out of memory, or an unguarded script)."""


WORKER_LOST = (
    "a worker process stopped abruptly (killed, out of memory, or a "
    "script that starts processes without if __name__ == '__main__':)"
)


def map_runs(
    executor,
    fn: Callable,
    tasks: Sequence,
    *,
    on_result: Callable[[int, object], None] | None = None,
    window: int | None = None,
    keep: bool = True,
) -> list:
    """``[fn(task) for task in tasks]`` on ``executor``: the one way simkit runs many runs.

    Parameters
    ----------
    executor
        An :class:`Executor` or any spec :func:`as_executor` takes (``None``: local
        processes for more than one task). An executor already entered is reused; one
        made here is started and stopped here.
    fn : callable
        A module-level function (it and the tasks must pickle for process and Dask
        executors).
    tasks : sequence
        One argument of ``fn`` per task.
    on_result : callable, optional
        ``on_result(index, result)`` as results arrive (those finished together in task
        order), e.g. to write them to disk or move a progress bar.
    window : int, optional
        Most tasks in flight at once (default: twice the workers, at least 2), so that a
        long list never sits in the queue all at once.
    keep : bool
        Return the results (in task order); ``False`` returns ``None`` for each, for
        callers whose ``on_result`` stores them.

    Returns
    -------
    list
        One result per task, in task order, whichever worker computed it and when: every
        task carries its own seed, so the numbers do not depend on the executor.

    Raises
    ------
    WorkerLost
        A worker process stopped abruptly; the tasks still queued are cancelled.
    """
    ex = as_executor(executor, runs=len(tasks))
    results: list = [None] * len(tasks)
    with ex:
        limit = window or max(2, 2 * ex.workers)
        todo = iter(enumerate(tasks))
        inflight: dict[cf.Future, int] = {}
        try:
            while True:
                while len(inflight) < limit:
                    item = next(todo, None)
                    if item is None:
                        break
                    inflight[ex.submit(fn, item[1])] = item[0]
                if not inflight:
                    break
                finished, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
                for fut in sorted(finished, key=inflight.__getitem__):
                    i = inflight.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        raise WorkerLost(WORKER_LOST) from None
                    if on_result is not None:
                        on_result(i, result)
                    if keep:
                        results[i] = result
        except BaseException:
            for fut in inflight:
                fut.cancel()
            raise
    return results
