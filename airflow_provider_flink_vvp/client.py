"""Sync (requests) and async (httpx) clients for the VVP OpenAPI, with retries.

They differ only in their transport: both sign with the same :func:`~.api.operations.prepare`,
parse with the same :func:`~.api.responses.parse_envelope` and retry with the same tenacity
policy. No Airflow imports: the hook builds :class:`ClientSettings` from a connection.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import requests
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter
from urllib3.exceptions import NewConnectionError

from airflow_provider_flink_vvp import __version__
from airflow_provider_flink_vvp.api.errors import (
    THROTTLING_CODES,
    VVPApiError,
    VVPConfigurationError,
    VVPConnectionError,
    VVPError,
)
from airflow_provider_flink_vvp.api.operations import (
    Credentials,
    Operation,
    PreparedRequest,
    acs_date,
    prepare,
)
from airflow_provider_flink_vvp.api.responses import parse_envelope
from airflow_provider_flink_vvp.sharing import SharedEndpoint, acquire_endpoint, release_endpoint

T = TypeVar("T")

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-flink-vvp/{__version__}"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY_LIMIT = 5
DEFAULT_RETRY_DELAY = 1.0
MAX_RETRY_WAIT = 60.0


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to call the API.

    :param endpoint: base URL with scheme and no path, e.g. ``https://ververica.cn-hangzhou.aliyuncs.com``.
    :param credentials: the AccessKey pair (and STS token) that signs every request.
    :param timeout: seconds to wait for a connection and for each read.
    :param retry_limit: attempts in all, the first included.
    :param retry_delay: seconds before the first retry; later ones back off exponentially, with jitter.
    """

    endpoint: str
    credentials: Credentials
    timeout: float = DEFAULT_TIMEOUT
    retry_limit: int = DEFAULT_RETRY_LIMIT
    retry_delay: float = DEFAULT_RETRY_DELAY

    def __post_init__(self) -> None:
        self._check_endpoint()
        if not _is_number(self.timeout) or not 0 < self.timeout < math.inf:
            raise VVPConfigurationError(f"timeout must be a positive number of seconds (finite), got {self.timeout!r}")
        if type(self.retry_limit) is not int or self.retry_limit < 1:
            raise VVPConfigurationError(
                f"retry_limit must be 1 or more attempts (a whole number), got {self.retry_limit!r}"
            )
        if not _is_number(self.retry_delay) or not 0 <= self.retry_delay < math.inf:
            raise VVPConfigurationError(
                f"retry_delay must be 0 or more seconds (a finite number), got {self.retry_delay!r}"
            )

    def _check_endpoint(self) -> None:
        like = (
            "a URL like https://ververica.cn-hangzhou.aliyuncs.com "
            "(a scheme, a host, an optional port; no path, query or fragment)"
        )
        if not isinstance(self.endpoint, str):
            raise VVPConfigurationError(f"endpoint must be {like}, got {self.endpoint!r}")
        if "@" in self.endpoint:
            # What precedes the '@' may be a password: the endpoint is not shown.
            raise VVPConfigurationError(
                "endpoint must not hold a user name or password (user:password@host): "
                "the AccessKey goes in the connection's login and password"
            )
        try:
            parts = urlsplit(self.endpoint)
            port = parts.port
        except ValueError as error:
            raise VVPConfigurationError(f"endpoint must be {like}, got {self.endpoint!r} ({error})") from None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or port == 0
            or not (parts.netloc.isascii() and parts.netloc.isprintable() and " " not in parts.netloc)
            or parts.path not in ("", "/")
            or "?" in self.endpoint
            or "#" in self.endpoint
        ):
            raise VVPConfigurationError(f"endpoint must be {like}, got {self.endpoint!r}")

    @property
    def base_url(self) -> str:
        return self.endpoint.rstrip("/")

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).netloc.lower()


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool (JSON's true is an int to isinstance)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class _RetryWait(wait_base):
    """The server's ``x-acs-retry-after`` when it gave one, else exponential backoff; both with jitter.

    A retry-after is followed as given (plus up to half of it, so throttled clients do not return
    together) rather than stretched by the backoff: the server knows when it has room again.
    """

    def __init__(self, initial: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial, max=MAX_RETRY_WAIT, jitter=initial)

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            return float(min(retry_after * (1 + random.random() / 2), MAX_RETRY_WAIT))  # noqa: S311 - jitter
        return float(self._backoff(retry_state))


class _ClientBase:
    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings

    def _prepare(self, operation: Operation[Any]) -> PreparedRequest:
        # A new date and nonce on every attempt: a retried request must not reuse its nonce.
        return prepare(
            operation,
            base_url=self.settings.base_url,
            host=self.settings.host,
            credentials=self.settings.credentials,
            date=acs_date(time.time()),
            nonce=uuid.uuid4().hex,
            user_agent=USER_AGENT,
        )

    def _retry_policy(self, operation: Operation[Any], *, idempotent: bool) -> dict[str, Any]:
        limit = self.settings.retry_limit

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            sleep = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s attempt %d of %d failed (%s); retrying in %.1f s",
                operation.action,
                state.attempt_number,
                limit,
                error,
                sleep,
            )

        return {
            "stop": stop_after_attempt(limit),
            "wait": _RetryWait(self.settings.retry_delay),
            "retry": retry_if_exception(
                lambda error: isinstance(error, VVPError) and error.retryable_for(idempotent=idempotent)
            ),
            "before_sleep": log_retry,
            "reraise": True,
        }

    def _answer(self, operation: Operation[T], status: int, headers: Mapping[str, str], body: bytes) -> T:
        envelope = parse_envelope(status=status, headers=headers, body=body, action=operation.action)
        return operation.parse(envelope, operation.action)

    def _connection_error(
        self, operation: Operation[Any], error: Exception, *, timed_out: bool, sent: bool
    ) -> VVPConnectionError:
        what = f"no answer within {self.settings.timeout:g} s from" if timed_out else "could not connect to"
        return VVPConnectionError(
            f"{operation.action}: {what} {self.settings.base_url} ({type(error).__name__}: {error}). "
            "Check the connection's endpoint and the network.",
            sent=sent,
        )


class VVPClient(_ClientBase):
    """Synchronous client: one ``requests.Session`` (and its connection pool) for all calls.

    :param settings: where and how to call.
    :param session: the session to send with; a new one by default.
    """

    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(self, settings: ClientSettings, *, session: requests.Session | None = None) -> None:
        super().__init__(settings)
        self.session = session or requests.Session()
        # Proxies, CA bundle and client certificate from the environment, read once: Session.request
        # would scan the whole environment on every call, a large share of a call's CPU time.
        self._environment = self.session.merge_environment_settings(settings.base_url, {}, None, None, None)

    def call(self, operation: Operation[T]) -> T:
        """Send ``operation`` (retrying what is transient) and return its parsed answer."""
        policy = self._retry_policy(operation, idempotent=operation.idempotent)
        result: T = Retrying(sleep=self.sleep, **policy)(self._attempt, operation)
        return result

    def call_or_confirm(self, operation: Operation[T], confirm: Callable[[], T | None]) -> T:
        """Send a state-changing ``operation`` so that it acts at most once.

        When its answer is lost (a timeout, a reset, a 5xx), ``confirm()`` looks for its effect
        (a new job, a stopping job) and returns the result it finds, or None, and only then is
        the operation sent again.
        """

        def attempt(operation: Operation[T]) -> T:
            try:
                return self._attempt(operation)
            except VVPError as error:
                if error.retryable and error.maybe_ran and (confirmed := confirm()) is not None:
                    return confirmed
                raise

        # Every repeat is safe now: confirm() has ruled out that the previous attempt ran.
        result: T = Retrying(sleep=self.sleep, **self._retry_policy(operation, idempotent=True))(attempt, operation)
        return result

    def close(self) -> None:
        self.session.close()

    def _attempt(self, operation: Operation[T]) -> T:
        request = self._prepare(operation)
        prepared = requests.PreparedRequest()
        prepared.prepare_method(request.method)
        # The URL is already what was signed: RFC 3986-encoded ASCII, which requests' re-quoting would keep.
        prepared.url = request.url
        prepared.prepare_headers(request.headers)
        prepared.prepare_body(request.body or None, None)
        try:
            response = self.session.send(
                prepared, timeout=self.settings.timeout, allow_redirects=False, **self._environment
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise self._connection_error(
                operation, error, timed_out=isinstance(error, requests.Timeout), sent=_may_have_been_sent(error)
            ) from error
        return self._answer(operation, response.status_code, response.headers, response.content)


class AsyncVVPClient(_ClientBase):
    """Asynchronous client for triggers.

    Clients of one endpoint in one event loop share its HTTP pool, identical reads and throttling
    pauses (see :mod:`.sharing`); a client given its own ``transport`` shares nothing.

    :param settings: where and how to call.
    :param transport: an httpx transport of its own (for tests); the shared pool by default.
    """

    sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def __init__(self, settings: ClientSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(settings)
        self._transport = transport
        self._endpoint: SharedEndpoint | None = None

    async def call(self, operation: Operation[T], *, max_age: float = 0.0, not_before: float = 0.0) -> T:
        """Send ``operation`` (retrying what is transient) and return its parsed answer.

        :param max_age: for a read, a result fetched up to this many seconds ago (by any client of
            the same endpoint and AccessKey ID in this event loop) is good enough. Identical reads
            in flight are always shared.
        :param not_before: never a result whose request was sent before this time (epoch seconds).
        """
        if not operation.idempotent:
            return await self._call(operation)
        key = (
            self.settings.credentials.access_key_id,
            operation.action,
            operation.path,
            tuple(sorted(operation.query.items())),
            tuple(sorted(operation.headers.items())),
        )
        return await self._shared_endpoint().read(key, max_age, lambda: self._call(operation), not_before=not_before)

    async def aclose(self) -> None:
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is None:
            return
        if self._transport is not None:
            await endpoint.http.aclose()
        else:
            await release_endpoint(self.settings.base_url, endpoint)

    def _shared_endpoint(self) -> SharedEndpoint:
        if self._endpoint is None:
            self._endpoint = (
                SharedEndpoint(httpx.AsyncClient(transport=self._transport, follow_redirects=False))
                if self._transport is not None
                else acquire_endpoint(self.settings.base_url)
            )
        return self._endpoint

    async def _call(self, operation: Operation[T]) -> T:
        retrying = AsyncRetrying(sleep=self.sleep, **self._retry_policy(operation, idempotent=operation.idempotent))
        result: T = await retrying(self._attempt, operation)
        return result

    async def _attempt(self, operation: Operation[T]) -> T:
        endpoint = self._shared_endpoint()
        await endpoint.wait_turn()
        request = self._prepare(operation)
        try:
            response = await endpoint.http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body or None,
                timeout=self.settings.timeout,
            )
        except httpx.TransportError as error:
            raise self._connection_error(
                operation,
                error,
                timed_out=isinstance(error, httpx.TimeoutException),
                sent=not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout),
            ) from error
        try:
            return self._answer(operation, response.status_code, response.headers, response.content)
        except VVPApiError as error:
            if error.code in THROTTLING_CODES:
                # The whole endpoint waits, so the other clients do not spend their attempts on it too.
                endpoint.pause(error.retry_after or self.settings.retry_delay)
            raise


def _may_have_been_sent(error: requests.RequestException) -> bool:
    """False only when requests never opened the connection (refused, or timed out connecting)."""
    if isinstance(error, requests.ConnectTimeout):
        return False
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return not isinstance(reason, NewConnectionError)
