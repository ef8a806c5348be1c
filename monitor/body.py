"""Read a response body within a size cap, decompressing it within the same cap.

httpx decompresses a whole network chunk at once and applies stacked encodings one
after another, so a small gzip bomb can expand to gigabytes before any check could
run. monitor reads the raw bytes and inflates them itself, never more than the cap.
"""

from __future__ import annotations

import zlib

import httpx

from monitor.errors import InvalidFeed, TooLarge

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_IDENTITY = {"", "identity"}


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """Return the response's body, decoded; raise TooLarge once it passes limit bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"the response announces {int(declared):,} bytes, more than the "
            f"{limit:,}-byte limit; not read"
        )
    inflater = _Inflater(response.headers.get("Content-Encoding", ""), limit)
    async for chunk in response.aiter_raw():
        inflater.feed(chunk)
    return inflater.finish()


class _Inflater:
    """Decode identity, gzip or deflate, keeping both the raw and decoded sizes in bounds."""

    def __init__(self, encoding: str, limit: int) -> None:
        codings = [c.strip().lower() for c in encoding.split(",")]
        codings = [c for c in codings if c not in _IDENTITY]
        if len(codings) > 1 or codings[0:1] not in ([], ["gzip"], ["x-gzip"], ["deflate"]):
            raise InvalidFeed(f"unsupported Content-Encoding {encoding!r}")
        self.coding = codings[0] if codings else None
        self.limit = limit
        self.raw = 0
        self.parts: list[bytes] = []
        self.size = 0
        wbits = zlib.MAX_WBITS if self.coding == "deflate" else _GZIP_WBITS
        self.inflate = zlib.decompressobj(wbits) if self.coding else None

    def feed(self, chunk: bytes) -> None:
        """Take the next raw chunk."""
        self.raw += len(chunk)
        if self.raw > self.limit:
            raise TooLarge(f"the response is larger than the {self.limit:,}-byte limit")
        if self.inflate is None:
            self._keep(chunk)
            return
        data = chunk
        while data:
            # At most one byte past the limit is ever inflated, whatever the ratio.
            try:
                out = self.inflate.decompress(data, self.limit - self.size + 1)
            except zlib.error as error:
                raise InvalidFeed(
                    f"the body is labelled {self.coding} but does not decode: {error}"
                ) from None
            self._keep(out)
            data = self.inflate.unconsumed_tail
            if self.inflate.eof and self.inflate.unused_data:
                raise InvalidFeed(f"bytes after the end of the {self.coding} stream")

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(
                f"the response is larger than the {self.limit:,}-byte limit once decompressed"
                if self.coding
                else f"the response is larger than the {self.limit:,}-byte limit"
            )
        self.parts.append(data)

    def finish(self) -> bytes:
        """Return the whole decoded body, once the raw body has ended."""
        if self.inflate is not None and not self.inflate.eof:
            raise InvalidFeed(f"the {self.coding} stream ends before it is complete")
        return b"".join(self.parts)
