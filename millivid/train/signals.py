"""Signal handling for long jobs: stop cleanly on SIGTERM (`timeout`, job schedulers) and save."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import torch
import torch.distributed as dist


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


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block the first SIGTERM raises KeyboardInterrupt, so ``finally`` clauses run
    (Python's default ends the process at once); later ones are ignored, as GNU `timeout` sends
    it twice. Blocks that must stop at a step boundary use ``StepBoundaryStop`` inside."""
    raised = False

    def handler(signum, frame) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise KeyboardInterrupt(f"signal {signum}")

    with _handling(getattr(signal, "SIGTERM", None), handler):
        yield


def ignore_worker_exits():
    """`timeout` and Ctrl-C signal the whole process group, so DataLoader workers die with the
    trainer; within the block the loader's SIGCHLD handler cannot raise (e.g. mid-save)."""
    return _handling(getattr(signal, "SIGCHLD", None), signal.SIG_DFL)


class StepBoundaryStop:
    """Within the block SIGTERM and the first Ctrl-C only ask the loop to stop: ``check()``,
    called between steps, then raises KeyboardInterrupt, so what is saved is a whole step (an
    interrupt in the middle of the optimizer or EMA update would save half of one). SIGTERM never
    escalates (GNU `timeout` sends it twice: to the job and to its process group; schedulers
    follow it with SIGKILL); a second Ctrl-C raises at once. DataLoader workers dying with the
    process group cannot raise in the middle of a step either (``ignore_worker_exits``); the
    loader notices them when asked for the next batch, and ``check()`` turns that into the same
    clean stop."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self._stack = ExitStack()

    def _handler(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.requested == signal.SIGINT:
            raise KeyboardInterrupt("Ctrl-C (second)")
        self.requested = self.requested or signum

    def __enter__(self) -> StepBoundaryStop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._stack.enter_context(_handling(signum, self._handler))
        self._stack.enter_context(ignore_worker_exits())
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def check(self, world: int = 1, device: torch.device | str = "cpu") -> None:
        """Raise KeyboardInterrupt if a stop was asked; with ``world`` > 1 processes, if any of
        them was asked (a collective: call it at the same steps on every rank, so all ranks stop
        at the same step and none waits for the others in the next all-reduce)."""
        asked = self.requested
        if world > 1:
            flag = torch.tensor([asked or 0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            asked = int(flag.item()) or None
        if asked is not None:
            raise KeyboardInterrupt(f"stopped between steps on signal {asked}")
