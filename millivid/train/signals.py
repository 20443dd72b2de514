"""Signal handling for long jobs: stop cleanly on SIGTERM (`timeout`, job schedulers) and save."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def _handling(signum: int | None, handler: Callable | int) -> Iterator[None]:
    """``handler`` for ``signum`` within the block, the previous one after (main thread only:
    Python installs handlers nowhere else; ``signum`` None: the platform lacks the signal)."""
    if signum is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def sigterm_as_interrupt():
    """Within the block SIGTERM raises KeyboardInterrupt, so long jobs save their state in
    ``finally`` as on Ctrl-C."""
    return _handling(signal.SIGTERM, _raise_interrupt)


def ignore_worker_exits():
    """`timeout` and Ctrl-C signal the whole process group, so DataLoader workers die with the
    trainer; within the block the loader's SIGCHLD handler cannot raise (e.g. mid-save)."""
    return _handling(getattr(signal, "SIGCHLD", None), signal.SIG_DFL)
