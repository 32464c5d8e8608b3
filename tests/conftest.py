"""Shared test set-up."""

import os

# pytest-xdist already runs one test per CPU: one thread per simulation in each worker
# (tests that are about threads set them explicitly).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("SIMKIT_THREADS", "1")
