"""What the async clients of one endpoint share within one event loop, such as the triggerer's.

A thousand deferred sensors are a thousand coroutines of one loop. Sharing keeps them cheap
for the API and for the process:

- one pooled ``httpx.AsyncClient`` per endpoint;
- one request in flight per identical read, and its result reused while it is fresh, so a
  hundred sensors on ten deployments make ten calls a poll, not a hundred;
- one throttling pause: when the API throttles, every client of the endpoint waits it out.

Nothing here knows the API: a read is identified by a key the client builds (which includes
the identity of the credentials, so results are never shared across credentials).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

# A finished read older than this is forgotten, so watching many deployments over days stays bounded.
FORGET_AFTER_SECONDS = 600.0
#: The longest throttling pause: one answer asking for days must not stall every client of the endpoint.
MAX_PAUSE_SECONDS = 60.0


@dataclass
class _Read:
    in_flight: asyncio.Future[Any] | None
    # When the request was sent, on the wall clock: a reader may refuse answers older than its own past.
    sent_at: float
    result: Any = None
    fetched_at: float | None = None


class SharedEndpoint:
    """The HTTP pool, reads and throttling pause of one endpoint in one event loop.

    :param http: the pooled client every user of the endpoint sends with.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.users = 0
        self._resume_at = 0.0
        self._reads: dict[Hashable, _Read] = {}

    async def wait_turn(self, *, at_most: float = MAX_PAUSE_SECONDS) -> None:
        """Sleep while the endpoint is paused by throttling, but no longer than ``at_most`` seconds
        (what is left of a call's budget)."""
        delay = min(self._resume_at - _now(), at_most)
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Hold every request to the endpoint for ``seconds`` (the throttling's retry-after), at most
        :data:`MAX_PAUSE_SECONDS`."""
        self._resume_at = max(self._resume_at, _now() + min(seconds, MAX_PAUSE_SECONDS))

    async def read(
        self, key: Hashable, max_age: float, fetch: Callable[[], Awaitable[T]], *, not_before: float = 0.0
    ) -> T:
        """``fetch()``'s result, shared: a result at most ``max_age`` seconds old, or the one in flight,
        provided its request was sent at or after ``not_before`` (epoch seconds).

        A failure is not kept: every waiter of a failed read gets its error, and the next read fetches.
        """
        read = self._reads.get(key)
        if read is not None and read.sent_at >= not_before:
            if read.in_flight is not None:
                result: T = await asyncio.shield(read.in_flight)
                return result
            if read.fetched_at is not None and _now() - read.fetched_at <= max_age:
                cached: T = read.result
                return cached
        self._forget_old_reads()
        in_flight = asyncio.ensure_future(fetch())
        self._reads[key] = read = _Read(in_flight=in_flight, sent_at=time.time())
        in_flight.add_done_callback(lambda done: self._settle(key, read, done))
        # Shielded: a cancelled waiter (a trigger being stopped) must not cancel the others' read.
        fetched: T = await asyncio.shield(in_flight)
        return fetched

    def _settle(self, key: Hashable, read: _Read, done: asyncio.Future[Any]) -> None:
        read.in_flight = None
        if done.cancelled() or done.exception() is not None:
            if self._reads.get(key) is read:
                del self._reads[key]
            return
        read.result, read.fetched_at = done.result(), _now()

    def _forget_old_reads(self) -> None:
        horizon = _now() - FORGET_AFTER_SECONDS
        stale = [
            key
            for key, read in self._reads.items()
            if read.in_flight is None and read.fetched_at is not None and read.fetched_at < horizon
        ]
        for key in stale:
            del self._reads[key]


_endpoints: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedEndpoint]] = (
    weakref.WeakKeyDictionary()
)


def acquire_endpoint(base_url: str) -> SharedEndpoint:
    """The running loop's shared endpoint for ``base_url``; pair with :func:`release_endpoint`."""
    endpoints = _endpoints.setdefault(asyncio.get_running_loop(), {})
    endpoint = endpoints.get(base_url)
    if endpoint is None:
        endpoint = endpoints[base_url] = SharedEndpoint(httpx.AsyncClient(follow_redirects=False))
    endpoint.users += 1
    return endpoint


async def release_endpoint(base_url: str, endpoint: SharedEndpoint) -> None:
    """Give the endpoint back; the last user closes its HTTP pool."""
    endpoint.users -= 1
    if endpoint.users > 0:
        return
    endpoints = _endpoints.get(asyncio.get_running_loop(), {})
    if endpoints.get(base_url) is endpoint:
        del endpoints[base_url]
    await endpoint.http.aclose()


def _now() -> float:
    return asyncio.get_running_loop().time()
