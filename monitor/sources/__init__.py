"""The stores monitor reads, one module each, every one behind the typed ``Store``.

The App Store and Google Play are built in. Another store is one module defining a
``Store``, registered here or installed by any package under the ``monitor.stores``
entry point group; nothing else in monitor needs to change.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from monitor.sources import apple, play
from monitor.sources.store import Endpoint, Store

ENTRY_POINTS = "monitor.stores"


def _installed() -> list[Store]:
    """Load the stores other packages provide, each a ``Store`` object."""
    return [point.load() for point in entry_points(group=ENTRY_POINTS)]


STORES: dict[str, Store] = {store.name: store for store in (apple.STORE, play.STORE, *_installed())}
DEFAULT_STORE = apple.STORE.name
# Every chart kind some store serves, in the order people expect them.
CHARTS = tuple(dict.fromkeys(chart for store in STORES.values() for chart in store.charts))
DEVICES = tuple(dict.fromkeys(device for store in STORES.values() for device in store.devices))
ENDPOINTS: tuple[Endpoint, ...] = tuple(e for store in STORES.values() for e in store.endpoints)
