"""Which faults a request meets: an exact queue first, then seeded random rates.

This module only decides; the server carries a fault out. With the same seed and the same
sequence of requests, the same requests fail.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_RETRY_AFTER_MS = 100


class FaultKind(StrEnum):
    THROTTLE = "throttle"  # 400 Throttling.User with x-acs-retry-after
    UNAVAILABLE = "unavailable"  # 503 ServiceUnavailable
    INTERNAL_ERROR = "internal_error"  # 500 InternalError
    DROP = "drop"  # the connection closes without an answer
    HTML = "html"  # 502 text/html, as from a load balancer
    LATENCY = "latency"  # the answer comes late, but comes
    # Queued only: the request is served, then its answer misbehaves on the wire.
    DRIP = "drip"  # the body comes one byte every latency_ms (100 ms by default)
    RESET = "reset"  # half the body, then a TCP reset
    SHORT_BODY = "short_body"  # the connection closes before the body reaches its Content-Length
    BAD_GZIP = "bad_gzip"  # Content-Encoding gzip over bytes that are not gzip
    TOO_MANY_REQUESTS = "too_many_requests"  # 429 text/plain with Retry-After (seconds), as from a proxy


# The kinds that end a request; a drawn rate picks at most one of them.
FAILURE_KINDS = (FaultKind.THROTTLE, FaultKind.UNAVAILABLE, FaultKind.INTERNAL_ERROR, FaultKind.DROP, FaultKind.HTML)
# The kinds that spoil the delivery of an answer the emulator did compute (the operation ran).
DELIVERY_KINDS = (FaultKind.DRIP, FaultKind.RESET, FaultKind.SHORT_BODY, FaultKind.BAD_GZIP)


@dataclass(frozen=True)
class Fault:
    """One fault; ``action`` limits a queued fault to requests naming that ``x-acs-action``."""

    kind: FaultKind
    action: str | None = None
    latency_ms: int = 0
    retry_after_ms: int = DEFAULT_RETRY_AFTER_MS


class FaultInjector:
    """A queue of exact faults and per-request probabilities, drawn from a seeded ``random.Random``.

    :param rates: probability per request of each failure kind (their sum at most 1).
    :param latency_rate: probability per request of an added ``latency_ms`` delay, drawn apart
        from the failures so a slow answer can also be a throttled one.
    """

    def __init__(
        self,
        *,
        rates: Mapping[FaultKind, float] | None = None,
        latency_ms: int = 0,
        latency_rate: float = 1.0,
        retry_after_ms: int = DEFAULT_RETRY_AFTER_MS,
        seed: int | None = None,
    ) -> None:
        self._random = random.Random(seed)  # noqa: S311 - repeatable test faults, not cryptography
        self._queue: list[Fault] = []
        self._lock = threading.Lock()
        self._rates: dict[FaultKind, float]
        self._latency: Fault
        self._latency_rate: float
        self._retry_after_ms = retry_after_ms
        self.set_rates(rates or {}, latency_ms=latency_ms, latency_rate=latency_rate)

    def set_rates(self, rates: Mapping[FaultKind, float], *, latency_ms: int = 0, latency_rate: float = 1.0) -> None:
        """Replace the probabilities; a latency of 0 ms disables the latency draw."""
        if FaultKind.LATENCY in rates:
            raise ValueError("give latency as latency_ms and latency_rate")
        if any(not 0 <= rate <= 1 for rate in (*rates.values(), latency_rate)) or sum(rates.values()) > 1:
            raise ValueError(f"fault rates must lie in [0, 1] and sum to at most 1, got {dict(rates)}")
        if latency_ms < 0:
            raise ValueError(f"latency_ms must not be negative, got {latency_ms}")
        with self._lock:
            self._rates = {kind: rates.get(kind, 0.0) for kind in FAILURE_KINDS}
            self._latency = Fault(FaultKind.LATENCY, latency_ms=latency_ms)
            self._latency_rate = latency_rate if latency_ms else 0.0

    def enqueue(self, *faults: Fault) -> None:
        """The next requests (of each fault's action, if it names one) meet these faults, in order."""
        with self._lock:
            self._queue.extend(faults)

    def pending(self) -> list[Fault]:
        """The queued faults not yet met."""
        with self._lock:
            return list(self._queue)

    def clear(self) -> None:
        """Forget the queue and every rate."""
        self.set_rates({})
        with self._lock:
            self._queue.clear()

    def faults_for(self, action: str) -> list[Fault]:
        """The faults one request meets, in order: a queued fault if one applies, else the drawn ones."""
        with self._lock:
            for position, fault in enumerate(self._queue):
                if fault.action in (None, action):
                    return [self._queue.pop(position)]
            met: list[Fault] = []
            if self._latency_rate and self._random.random() < self._latency_rate:
                met.append(self._latency)
            if any(self._rates.values()):
                draw = self._random.random()
                for kind, rate in self._rates.items():
                    if draw < rate:
                        met.append(Fault(kind, retry_after_ms=self._retry_after_ms))
                        break
                    draw -= rate
            return met
