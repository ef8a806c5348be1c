"""Text from the stores, made safe to show on a terminal."""

from __future__ import annotations

import logging


def printable(text: str | None) -> str:
    """Show control characters from a store's text as escapes, not as terminal commands."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text or "")


class PrintableFormatter(logging.Formatter):
    """Format log lines with every control character in the message escaped.

    Log messages quote stores' answers (error messages, feed links); a traceback
    appended after the message keeps its lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))
