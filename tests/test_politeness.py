"""Each host's gate: requests in flight, requests a second, and slowing down on 429/503.

The gate is driven directly, then through the real ``monitor collect`` against the
stand-in on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest

from helpers import query
from monitor.errors import HTTPStatusError, RateLimited, TransportError
from monitor.politeness import Gate, Politeness
from monitor.reference import storefronts_175


def run(coroutine):
    return asyncio.run(coroutine)


async def through(gate: Gate, seconds: float, error: BaseException | None = None) -> float:
    started = await gate.enter()
    await asyncio.sleep(seconds)
    await gate.leave(started, error)
    return started


def busy(status: int) -> HTTPStatusError:
    return HTTPStatusError(f"HTTP {status}", http_status=status)


def test_the_gate_lets_no_more_in_flight_than_its_concurrency():
    gate = Gate("apple", "h", Politeness(3))
    most = 0

    async def one():
        nonlocal most
        started = await gate.enter()
        most = max(most, gate.in_flight)
        await asyncio.sleep(0.01)
        await gate.leave(started, None)

    async def main():
        await asyncio.gather(*(one() for _ in range(20)))

    run(main())
    assert most == 3
    assert gate.report().requests == 20


def test_the_gate_starts_no_more_than_its_rate():
    gate = Gate("apple", "h", Politeness(8, rate=20))

    async def main():
        return await asyncio.gather(*(through(gate, 0) for _ in range(10)))

    starts = sorted(run(main()))
    # Each start keeps to its slot on the schedule (within the clock's wake-up jitter):
    # however late one wakes, the next is never let in early to catch up.
    assert all(later - starts[0] >= i * 0.05 - 0.002 for i, later in enumerate(starts))
    assert starts[-1] - starts[0] < 9 * 0.05 + 0.05


def test_the_gate_leaves_its_gap_of_quiet_after_each_answer():
    # Answers take 0.1 s, longer than the rate's 0.05 s between starts: the gap of
    # 0.08 s after each answer is what sets the pace.
    gate = Gate("play", "h", Politeness(1, rate=20, gap=0.08))
    ends = []

    async def one():
        started = await through(gate, 0.1)
        ends.append(asyncio.get_running_loop().time())
        return started

    async def main():
        return await asyncio.gather(*(one() for _ in range(4)))

    starts = sorted(run(main()))
    quiet = [start - end for end, start in zip(sorted(ends)[:-1], starts[1:], strict=True)]
    assert min(quiet) >= 0.08 - 0.002
    assert gate.report().limits == "1 in flight, at most 20 a second, 0.08s after each answer"


def test_a_host_that_complains_halves_the_window_once_per_round_then_it_grows_back():
    gate = Gate("apple", "h", Politeness(8))

    async def main():
        # Four requests in flight when the host first answers 503.
        first = [await gate.enter() for _ in range(4)]
        await gate.leave(first[0], busy(503))
        assert gate.window == 4
        for started in first[1:]:  # the same round says the same: no second halving
            await gate.leave(started, RateLimited("HTTP 429", http_status=429))
        assert gate.window == 4
        await gate.leave(await gate.enter(), busy(429))  # a new round complains again
        assert gate.window == 2
        await gate.leave(await gate.enter(), busy(500))  # an answer, not a complaint
        assert gate.window == 2.5  # grown by 1/window
        await gate.leave(await gate.enter(), TransportError("reset"))  # no answer at all
        assert gate.window == 2.5  # neither grown nor halved
        for _ in range(200):
            await gate.leave(await gate.enter(), None)

    run(main())
    assert gate.window == 8  # back to the full concurrency, and no further
    report = gate.report()
    assert (report.slowdowns, report.fewest_in_flight) == (2, 2)


def test_additive_increase_adds_about_one_request_in_flight_per_round():
    gate = Gate("apple", "h", Politeness(8))
    gate.window = 2.0

    async def main():
        for _ in range(2):  # one round of two answers
            await gate.leave(await gate.enter(), None)

    run(main())
    assert gate.window == pytest.approx(2 + 1 / 2 + 1 / 2.5)


def test_one_in_flight_a_complaint_becomes_a_wait_after_each_answer_then_wears_off():
    gate = Gate("play", "h", Politeness(1))

    async def main():
        await gate.leave(await gate.enter(), busy(429))
        assert gate.window == 0.5  # below one in flight: a wait
        answered = await through(gate, 0.1)  # an answer that took 0.1 s
        left = asyncio.get_running_loop().time()
        waited = await gate.enter() - left
        await gate.leave(answered, None)
        return waited

    waited = run(main())
    # A window of 0.5 grown by half (0.75) after the answer: (1/0.75 - 1) x 0.1 s of quiet.
    assert 0.033 - 0.003 <= waited < 0.033 + 0.02
    assert gate.window == 1.0  # grown by half again, and no further than one in flight
    assert (gate.report().slowdowns, gate.report().fewest_in_flight) == (1, 0.5)
    assert (
        gate.report().describe().endswith("slowed down 1 times (to 1 in flight, 1/2 of the time)")
    )


def test_a_rate_limit_in_the_body_of_an_answer_is_a_complaint():
    gate = Gate("play", "h", Politeness(1))

    async def main():
        await gate.leave(await gate.enter(), RateLimited("rate limited: PlayGatewayError"))

    run(main())
    assert gate.window == 0.5 and gate.report().slowdowns == 1


def test_a_sweep_slows_down_for_a_host_that_answers_503_and_says_so(run_monitor, stand_in, db_path):
    countries = list(storefronts_175())[:40]
    stand_in.faults = dict.fromkeys(countries[:6], "503-retry-after")
    stand_in.retry_after = "0"
    result = run_monitor("collect", "--country", ",".join(countries), "--retries", "1")
    assert result.returncode == 1, result.stderr
    assert "34 charts ok, 6 failed" in result.stdout
    ((slowdowns, fewest, requests),) = query(
        db_path, "SELECT slowdowns, fewest_in_flight, requests FROM sweep_hosts"
    )
    assert slowdowns >= 1 and fewest <= 4
    assert requests == 34 + 6 * 2  # each failed chart tried twice
    host = f"127.0.0.1:{stand_in.url.rsplit(':', 1)[1].strip('/')}"
    assert f"apple {host}: 46 requests" in result.stdout
    assert f"slowed down {slowdowns} times (to {fewest} in flight)" in result.stdout
    status = run_monitor("status")
    assert "Hosts in sweep 1:" in status.stdout
    assert f"slowed down {slowdowns} times" in status.stdout


def test_a_rate_limit_paces_the_sweep(run_monitor, stand_in, db_path):
    countries = ",".join(list(storefronts_175())[:12])
    result = run_monitor("collect", "--country", countries, "--rate", "10")
    assert result.returncode == 0, result.stderr
    # 12 starts, 0.1 s apart, as the store saw them arrive.
    assert stand_in.arrivals[-1] - stand_in.arrivals[0] >= 1.1 - 0.02
    ((limits, rate),) = query(db_path, "SELECT limits, rate FROM sweep_hosts")
    assert limits == "8 in flight, at most 10 a second"
    assert rate <= 10.5


def test_google_play_slows_down_when_its_answers_say_rate_limited(run_monitor, stand_in, db_path):
    countries = ["gb", "fr", "us", "de", "jp", "it"]
    stand_in.faults = {"gb": "rate-limited", "fr": "rate-limited"}
    stand_in.delay = 0.05
    result = run_monitor(
        "collect",
        "--store",
        "play",
        "--country",
        ",".join(countries),
        "--depth",
        "5",
        "--play-interval",
        "0",
        "--retries",
        "0",
    )
    assert result.returncode == 1, result.stderr
    ((slowdowns, fewest),) = query(db_path, "SELECT slowdowns, fewest_in_flight FROM sweep_hosts")
    # Each complaint halves the window, as a 429 would: 1, then 0.5, then 0.25.
    assert (slowdowns, fewest) == (2, 0.25)
    assert "slowed down 2 times (to 1 in flight, 1/4 of the time)" in result.stdout
    # After each complaint, where no quiet was asked for, (1/window - 1) times as long a
    # quiet as the answer took: the next request comes at least 2 answers' time after
    # gb's (a window of 0.5) and 4 after fr's (0.25).
    asked = [re.search(r"gl=(\w+)", path).group(1) for path in stand_in.requests]
    gaps = [b - a for a, b in itertools.pairwise(stand_in.arrivals)]
    after = dict(zip(asked[:-1], gaps, strict=True))
    assert asked[:2] == ["gb", "fr"]
    assert after["gb"] >= 2 * 0.05 and after["fr"] >= 4 * 0.05
