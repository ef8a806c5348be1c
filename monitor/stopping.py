"""Stopping on a signal: SIGTERM or SIGINT set an event that the work in progress watches."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("monitor")


class Stop(threading.Event):
    """Set when monitor is asked to stop; remembers which signal asked."""

    def __init__(self) -> None:
        super().__init__()
        self.signal: signal.Signals | None = None

    def by(self, signum: int) -> None:
        """Stop because of this signal."""
        self.signal = signal.Signals(signum)
        self.set()

    @property
    def reason(self) -> str:
        """Say why the work stopped, for the sweep's record."""
        return f"{self.signal.name} received" if self.signal else "asked to stop"

    @property
    def exit_code(self) -> int:
        """Return the exit code shells expect after this signal: 128 plus its number."""
        return 128 + (self.signal or signal.SIGINT)


def stop_on_signals() -> Stop:
    """Return a Stop that SIGTERM or SIGINT sets, instead of killing the process."""
    stop = Stop()

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.by(signum)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
