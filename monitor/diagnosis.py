"""What failures say together: grouped by store and cause, with what to check.

A store every chart of which failed the same way points at one cause on this side (no
network, a wrong base URL, a proxy), not at 175 storefronts. ``monitor status`` and
the service's log both say so once, with the setting to look at.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from monitor.charts import FetchResult
from monitor.errors import SWEEP_KINDS
from monitor.sources import STORES

# Where each store's base URLs are set, for the hints.
BASE_URL_SETTINGS = {
    name: " and ".join(e.envvar for e in store.endpoints) for name, store in STORES.items()
}
_HINTS = {
    "transport": "check the network, the base URL ({urls}) and any proxy (HTTPS_PROXY)",
    "timeout": "check the network, any proxy (HTTPS_PROXY) and the base URL ({urls}); "
    "a slow link may need a longer --timeout",
    "http_status": "check the base URL ({urls}) and any proxy between monitor and the store",
    "redirect": "check the base URL ({urls}): the server there sends requests elsewhere",
    "too_large": "check the base URL ({urls}); if it is right, raise --max-body",
    "invalid_feed": "check the base URL ({urls}); if it is right, the store changed its "
    "format and monitor needs an update",
    "drift": "the store changed its format: monitor needs an update (the bodies are kept "
    "in raw_responses)",
    "blocked": "the store shows this address a consent or captcha page: check the proxy "
    "or the network monitor goes out through",
    "rate_limited": "the store is limiting this address: sweep less often, lower "
    "--concurrency, or raise --play-interval",
    "unexpected": "the service's log has the traceback; please report it",
}
# A few failures of each cause are logged one by one, the rest counted once.
LOGGED_PER_CAUSE = 3


def hint(store: str, kind: str) -> str:
    """Say what to check when every chart of a store failed with this kind of error."""
    urls = BASE_URL_SETTINGS.get(store, "the store's base URL")
    advice = _HINTS.get(kind, "check the network and the base URL ({urls})").format(urls=urls)
    return f"every {store} chart failed ({kind}): {advice}"


def store_hints(outcomes: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """Per store every chart of which failed the same way, what to check.

    ``outcomes`` are (store, error kind), the kind None for a chart stored. Charts a
    sweep ended without (stopped, a full disk) say nothing of the store.
    """
    kinds: defaultdict[str, set[str | None]] = defaultdict(set)
    for store, kind in outcomes:
        kinds[store].add(kind)
    return {
        store: hint(store, kind)
        for store, found in kinds.items()
        if len(found) == 1 and (kind := next(iter(found))) is not None and kind not in SWEEP_KINDS
    }


def storefront_list(failed: Iterable[str], attempted: Iterable[str]) -> str:
    """Name the storefronts that failed compactly, against those that were attempted."""
    failed, attempted = sorted(set(failed)), set(attempted)
    if len(attempted) > 1 and set(failed) >= attempted:
        return f"all {len(attempted)} storefronts"
    spared = sorted(attempted - set(failed))
    if len(failed) > 10 and len(spared) < len(failed) / 4:
        return f"{len(failed)} of {len(attempted)} storefronts, all but {' '.join(spared)}"
    return f"{len(failed)} storefront{'s' * (len(failed) != 1)}: {' '.join(failed)}"


class Tally:
    """One sweep's results by store: charts stored, and failures by kind and storefront."""

    def __init__(self) -> None:
        self.ok: Counter[str] = Counter()
        self.failed: defaultdict[tuple[str, str], list[str]] = defaultdict(list)

    def add(self, result: FetchResult) -> bool:
        """Count a result; tell whether it is a failure to log on its own line."""
        store = result.req.store
        if result.error is None:
            self.ok[store] += 1
            return False
        countries = self.failed[store, result.error_kind or "error"]
        countries.append(result.req.country)
        return len(countries) <= LOGGED_PER_CAUSE

    def unlogged(self) -> list[str]:
        """Say, per store and cause, how many failures were not logged one by one."""
        return [
            f"{store}: {len(countries) - LOGGED_PER_CAUSE} more charts failed ({kind}) in "
            + " ".join(sorted(set(countries[LOGGED_PER_CAUSE:])))
            for (store, kind), countries in self.failed.items()
            if len(countries) > LOGGED_PER_CAUSE
        ]

    def hints(self) -> dict[str, str]:
        """Per store every chart of which failed the same way, what to check."""
        stored: list[tuple[str, str | None]] = [(store, None) for store in self.ok]
        return store_hints(stored + list(self.failed))
