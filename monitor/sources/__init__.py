"""The stores monitor reads, one module each, every one behind the typed ``Store``.

The App Store and Google Play are built in. Another store is one module defining a
``Store``, registered here or installed by any package under the ``monitor.stores``
entry point group; nothing else in monitor needs to change.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from monitor.errors import MonitorError
from monitor.sources import apple, play
from monitor.sources.store import Endpoint, Store

BUILT_IN: tuple[Store, ...] = (apple.STORE, play.STORE)
ENTRY_POINTS = "monitor.stores"


def _installed() -> list[Store]:
    """Load the stores other packages provide, refusing what is not a new Store."""
    found: list[Store] = []
    for point in entry_points(group=ENTRY_POINTS):
        store = point.load()
        if not isinstance(store, Store):
            raise MonitorError(f"{point.value} ({ENTRY_POINTS} {point.name}) is not a Store")
        if store.name in [s.name for s in (*BUILT_IN, *found)]:
            raise MonitorError(f"{point.value} names a store that exists: {store.name}")
        found.append(store)
    return found


STORES: dict[str, Store] = {store.name: store for store in (*BUILT_IN, *_installed())}
DEFAULT_STORE = apple.STORE.name
# Every chart kind some store serves, in the order people expect them.
CHARTS = tuple(dict.fromkeys(chart for store in STORES.values() for chart in store.charts))
DEVICES = tuple(dict.fromkeys(device for store in STORES.values() for device in store.devices))
# Each device as people write it, e.g. "iPhone".
DEVICE_TITLES = {d: t for store in STORES.values() for d, t in store.device_titles.items()}
ENDPOINTS: tuple[Endpoint, ...] = tuple(e for store in STORES.values() for e in store.endpoints)
