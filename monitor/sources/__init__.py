"""The stores monitor reads, one module each: a request builder and a pure parser."""

from __future__ import annotations

from monitor.sources import apple, play

SOURCES = {"apple": apple, "play": play}
