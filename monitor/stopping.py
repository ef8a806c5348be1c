"""Stopping on a signal: SIGTERM or SIGINT set an event that the work in progress watches."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger("monitor")


class Stop(threading.Event):
    """Set when monitor is asked to stop; remembers which signal asked."""

    def __init__(self) -> None:
        super().__init__()
        self.signal: signal.Signals | None = None

    def by(self, signum: int) -> None:
        """Stop because of this signal; one that comes once asked already changes nothing."""
        if self.signal is not None:
            return
        self.signal = signal.Signals(signum)
        log.info("%s received: stopping", self.signal.name)
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
    """Return a Stop that SIGTERM or SIGINT sets, instead of killing the process.

    A signal's handler runs in the main thread wherever it is, inside the event's own
    lock too (in wait()), or inside another handler; were it to set the event, it would
    wait for that lock forever. So the handler only writes the signal down a pipe, which
    takes no lock, and a thread of its own reads it and sets the latest Stop made here.
    """
    stop = Stop()
    write_end = _signals_pipe(stop)

    def handle(signum: int, frame: FrameType | None) -> None:
        os.write(write_end, bytes([signum]))

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


# The process's pipe of signals and the Stop its thread sets: one pipe and one thread a
# process, however many times stop_on_signals is called.
_signals: dict[str, Any] = {}


def _signals_pipe(stop: Stop) -> int:
    """Make the latest Stop the one signals set; return the pipe's end to write them to."""
    _signals["stop"] = stop
    if _signals.get("pid") != os.getpid():  # none yet, or a forked child's parent's
        read_end, write_end = os.pipe()
        _signals.update(pid=os.getpid(), write_end=write_end)
        threading.Thread(
            target=_stop_when_signalled, args=(read_end,), name="signals", daemon=True
        ).start()
    return int(_signals["write_end"])


def _stop_when_signalled(read_end: int) -> None:
    while signum := os.read(read_end, 1):
        _signals["stop"].by(signum[0])
