r"""Serving the explorer app: a kernel manager for Voila that caps the kernels running at once.

Every visitor of the app (``make app``: Voila serving ``notebooks/app.ipynb``) gets a kernel
of their own, ~400 MB; Voila starts one per page load and has no limit of its own (its
idle culler, ``MappingKernelManager.cull_idle_timeout``, only stops kernels left idle).
:class:`AppKernelManager` adds one: at most :attr:`AppKernelManager.max_kernels` kernels at
once, the pre-heated ones included. A visitor who comes when they are all taken gets a page
saying so (HTTP 503) instead of a kernel; a pre-heated kernel that would go over the limit
is not started, and the pool is filled again when a kernel stops (a page closed, an idle
kernel culled). Voila takes it as its kernel manager::

    voila notebooks/app.ipynb \
        --VoilaConfiguration.multi_kernel_manager_class=simkit.widgets.serve.AppKernelManager \
        --AppKernelManager.max_kernels=4

(Voila builds its pre-heating manager on top of the class given, so this works with
``--preheat_kernel=True`` as well as without.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Int

__all__ = ["AppKernelManager", "busy_message"]


def busy_message(limit: int) -> str:
    """Return what a visitor reads when ``limit`` kernels are already running."""
    visitors = f"{limit} visitor{'' if limit == 1 else 's'}"
    return (
        f"The simkit explorer has {visitors} at the moment, as many as this server "
        "takes at once. Please try again in a few minutes: a kernel stops when its page is "
        "closed or has been idle for a while."
    )


class AppKernelManager(AsyncMappingKernelManager):
    """Jupyter Server's kernel manager with a limit on the kernels running at once.

    A kernel is counted from the moment it is asked for until it stops, so that visitors
    arriving together cannot all slip under the limit.
    """

    max_kernels = Int(
        4,
        config=True,
        help="Kernels running at once, pre-heated ones included (visitors beyond: HTTP 503).",
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._starting = 0  # kernels asked for and not yet running
        self._closing = False

    def running(self) -> int:
        """Return the kernels running or starting."""
        return len(self._kernels) + self._starting

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
        """Start a kernel, unless :attr:`max_kernels` are running (HTTP 503)."""
        if self.running() >= self.max_kernels:
            self._leave_pool(asyncio.current_task())
            self.log.warning("kernel limit: %d running, a new one refused", self.running())
            # (the reason is what Voila's error page shows, after the status code)
            message = busy_message(self.max_kernels)
            raise web.HTTPError(503, message, reason=message)
        self._starting += 1  # (no await since the check: visitors cannot race past it)
        try:
            return await super().start_kernel(*args, **kwargs)
        finally:
            self._starting -= 1

    async def shutdown_kernel(self, *args: Any, **kwargs: Any) -> None:
        """Stop a kernel; then fill Voila's pool of pre-heated kernels again, if it has one."""
        await super().shutdown_kernel(*args, **kwargs)
        fill = getattr(self, "fill_if_needed", None)  # (Voila's pre-heating manager)
        for notebook in list(getattr(self, "_pools", {})):
            if fill is not None and not self._closing:
                fill(delay=0, notebook_name=notebook)

    async def shutdown_all(self, *args: Any, **kwargs: Any) -> None:
        """Stop every kernel (the server is stopping: no pool filled again)."""
        self._closing = True
        await super().shutdown_all(*args, **kwargs)

    def _leave_pool(self, task: asyncio.Task | None) -> None:
        """Take a refused pre-heating ``task`` out of Voila's pool.

        Else the next visitor would be handed its error rather than the busy page, and the
        pool would not be filled again.
        """
        for pool in getattr(self, "_pools", {}).values():
            if task in pool:
                pool.remove(task)
                task.add_done_callback(lambda t: t.cancelled() or t.exception())  # (seen)
