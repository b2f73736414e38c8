"""Sync (requests) and async (httpx) clients for the VVP OpenAPI, with retries.

They differ only in their transport: both sign with the same :func:`~.api.operations.prepare`,
parse with the same :func:`~.api.responses.parse_envelope`, retry with the same tenacity
policy and report a transport failure as the same :class:`~.api.errors.VVPConnectionError`.
No Airflow imports: the hook builds :class:`ClientSettings` from a connection.

Every call is bounded: an attempt ends within ``timeout`` seconds (connecting, sending and the
whole answer), a pause between attempts lasts at most :data:`MAX_RETRY_WAIT` seconds and never
runs past the call's budget (``timeout x retry_limit``, after which no attempt starts), and an
answer's body is read up to :data:`MAX_BODY_BYTES`.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import http.client
import io
import logging
import math
import random
import re
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import requests
import urllib3
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

from airflow_provider_flink_vvp import __version__
from airflow_provider_flink_vvp.api.errors import (
    VVPApiError,
    VVPConfigurationError,
    VVPConnectionError,
    VVPError,
    VVPOutcomeUnknownError,
)
from airflow_provider_flink_vvp.api.operations import (
    Credentials,
    Operation,
    PreparedRequest,
    acs_date,
    prepare,
)
from airflow_provider_flink_vvp.api.responses import parse_envelope
from airflow_provider_flink_vvp.credentials import EXPIRED_TOKEN_CODE, CredentialsSource, secrets_of
from airflow_provider_flink_vvp.sharing import MAX_PAUSE_SECONDS, SharedEndpoint, acquire_endpoint, release_endpoint

T = TypeVar("T")

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-flink-vvp/{__version__}"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY_LIMIT = 5
DEFAULT_RETRY_DELAY = 1.0
#: The longest pause between two attempts, whatever the server asks (x-acs-retry-after, Retry-After).
MAX_RETRY_WAIT = MAX_PAUSE_SECONDS
# The largest settings: beyond them a value is a slip (milliseconds for seconds), and the libraries' and the OS's
# timers overflow somewhere past 10**9 s.
#: The largest ``timeout``, in seconds (a day).
MAX_TIMEOUT = 86400.0
#: The largest ``retry_limit``.
MAX_RETRY_LIMIT = 100
#: The largest ``retry_delay``, in seconds.
MAX_RETRY_DELAY = MAX_RETRY_WAIT
#: The largest answer read: the API's pages are far smaller, so more is a broken or hostile server.
MAX_BODY_BYTES = 16 * 1024 * 1024
_READ_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to call the API.

    :param endpoint: base URL with scheme and no path, e.g. ``https://ververica.cn-hangzhou.aliyuncs.com``.
    :param credentials: the AccessKey pair (and STS token) that signs every request, or a source of
        temporary credentials asked for the current ones before each request is signed.
    :param timeout: seconds an attempt may take in all: connecting, sending and reading the whole answer;
        at most :data:`MAX_TIMEOUT` (a day).
    :param retry_limit: attempts in all, the first included; at most :data:`MAX_RETRY_LIMIT`.
    :param retry_delay: seconds before the first retry (at most :data:`MAX_RETRY_DELAY`); later ones back off
        exponentially, with jitter.
    """

    endpoint: str
    credentials: Credentials | CredentialsSource
    timeout: float = DEFAULT_TIMEOUT
    retry_limit: int = DEFAULT_RETRY_LIMIT
    retry_delay: float = DEFAULT_RETRY_DELAY

    def __post_init__(self) -> None:
        self._check_endpoint()
        if not _is_number(self.timeout) or not 0 < self.timeout <= MAX_TIMEOUT:
            raise VVPConfigurationError(
                f"timeout must be a positive number of seconds (finite), at most {MAX_TIMEOUT:g}, got {self.timeout!r}"
            )
        if type(self.retry_limit) is not int or not 1 <= self.retry_limit <= MAX_RETRY_LIMIT:
            raise VVPConfigurationError(
                f"retry_limit must be 1 or more attempts (a whole number), at most {MAX_RETRY_LIMIT}, "
                f"got {self.retry_limit!r}"
            )
        if not _is_number(self.retry_delay) or not 0 <= self.retry_delay <= MAX_RETRY_DELAY:
            raise VVPConfigurationError(
                f"retry_delay must be 0 or more seconds (a finite number), at most {MAX_RETRY_DELAY:g}, "
                f"got {self.retry_delay!r}"
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
        # urlsplit drops tabs and newlines anywhere in a URL: the endpoint as given is looked at.
        if not (self.endpoint.isascii() and self.endpoint.isprintable() and " " not in self.endpoint):
            raise VVPConfigurationError(f"endpoint must be {like}, got {self.endpoint!r}")
        try:
            parts = urlsplit(self.endpoint)
            port = parts.port
        except ValueError as error:
            raise VVPConfigurationError(f"endpoint must be {like}, got {self.endpoint!r} ({error})") from None
        if (
            parts.scheme not in ("http", "https")
            or not _HOST_NAME.fullmatch(parts.hostname or "")
            or port == 0
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

    @property
    def budget(self) -> float:
        """Seconds after a call's start at which no further attempt starts and no pause runs past."""
        return self.timeout * self.retry_limit


# A DNS name, an IPv4 address or (without its brackets) an IPv6 one; no '%', ';' or backslash, which clients read apart.
_HOST_NAME = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool (JSON's true is an int to isinstance)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class _RetryWait(wait_base):
    """The server's retry-after when it gave one, else exponential backoff; both with jitter, both capped.

    A retry-after is followed as given (plus up to half of it, so throttled clients do not return
    together) rather than stretched by the backoff: the server knows when it has room again. No
    pause is longer than :data:`MAX_RETRY_WAIT`, nor runs past the call's budget.
    """

    def __init__(self, *, initial: float, budget: float) -> None:
        # tenacity 8.3's parts, as wait_exponential_jitter(multiplier=...) came only with 9.2.
        self._backoff = wait_exponential(multiplier=initial, max=MAX_RETRY_WAIT) + wait_random(0, initial)
        self._budget = budget

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        # Jitter (not cryptography) on a retry-after too, so throttled clients do not return together.
        wanted = retry_after * (1 + random.random() / 2) if retry_after else self._backoff(retry_state)  # noqa: S311
        left = self._budget - (retry_state.seconds_since_start or 0.0)
        return float(max(0.0, min(wanted, MAX_RETRY_WAIT, left)))


class _Failure(enum.Enum):
    """How a request failed on its way, what to say about it, and whether it may have reached the service."""

    REFUSED = ("could not connect to {url} ({cause}). Check the connection's endpoint and the network.", False)
    CONNECT_TIMEOUT = (
        "could not connect to {url} within {timeout} s ({cause}). Check the connection's endpoint and the network.",
        False,
    )
    PROXY = (
        "the proxy failed the request to {url} ({cause}). Check the HTTPS_PROXY, HTTP_PROXY and NO_PROXY "
        "environment variables.",
        False,
    )
    TLS = (
        "the TLS handshake with {url} failed ({cause}); not retried. Check that the endpoint speaks https on "
        "that port and that its certificate is trusted (the CA bundle: REQUESTS_CA_BUNDLE, SSL_CERT_FILE).",
        False,
    )
    NO_ANSWER = ("no answer within {timeout} s from {url} ({cause}). The service or the network is slow.", True)
    BROKEN = ("the connection to {url} broke before the whole answer came ({cause}).", True)
    # The library's text may quote a header (the signature, a token): only the error's type is told.
    INVALID_REQUEST = (
        "the request to {url} cannot be sent ({kind}): a header or the URL is not valid HTTP. Check the "
        "connection's endpoint, AccessKey ID and security token for spaces, control or non-ASCII characters.",
        False,
    )

    def __init__(self, template: str, sent: bool) -> None:
        self.template = template
        self.sent = sent


class _ClientBase:
    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        credentials = settings.credentials
        # Fixed credentials are signed with as they are; a source is asked before each request.
        self._fixed = credentials if isinstance(credentials, Credentials) else None
        self._source = None if isinstance(credentials, Credentials) else credentials
        self._identity = credentials.access_key_id if isinstance(credentials, Credentials) else credentials.identity
        # What a server that echoes a request back must not get into an error (a source's: its current ones).
        self._secrets = secrets_of(credentials) if isinstance(credentials, Credentials) else ()
        # When to stop and how long to pause: the same for every call, so made once.
        self._stop = stop_after_attempt(settings.retry_limit) | stop_after_delay(settings.budget)
        self._wait = _RetryWait(initial=settings.retry_delay, budget=settings.budget)

    def _prepare(self, operation: Operation[Any], credentials: Credentials) -> PreparedRequest:
        # A new date and nonce on every attempt: a retried request must not reuse its nonce.
        return prepare(
            operation,
            base_url=self.settings.base_url,
            host=self.settings.host,
            credentials=credentials,
            date=acs_date(time.time()),
            nonce=uuid.uuid4().hex,
            user_agent=USER_AGENT,
        )

    def _retry_policy(self, operation: Operation[Any], retry: Callable[[BaseException], bool]) -> dict[str, Any]:
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
            "stop": self._stop,
            "wait": self._wait,
            "retry": retry_if_exception(retry),
            "before_sleep": log_retry,
            "reraise": True,
        }

    def _answer(self, operation: Operation[T], status: int, headers: Mapping[str, str], body: bytes) -> T:
        secrets = self._secrets or (self._source.secrets if self._source else ())
        try:
            envelope = parse_envelope(
                status=status, headers=headers, body=body, action=operation.action, secrets=secrets
            )
            return operation.parse(envelope, operation.action)
        except VVPApiError as error:
            # A model's complaint quotes the answer's data, which may echo a secret too.
            redacted = error.redacted(secrets)
            failure: VVPError = redacted
            if self._source is not None and redacted.code == EXPIRED_TOKEN_CODE:
                # The service's clock is ahead of ours: the next attempt renews them first.
                failure = self._source.expired(redacted)
            elif redacted is error:
                raise
        raise failure  # outside the except block: the error that held a secret is not even its context

    def _check_length(self, operation: Operation[Any], status: int, headers: Mapping[str, str]) -> None:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise self._too_large(operation, status, headers)

    def _too_large(self, operation: Operation[Any], status: int, headers: Mapping[str, str]) -> VVPApiError:
        return VVPApiError(
            code="InvalidResponse",
            message=f"the answer is larger than {MAX_BODY_BYTES} bytes, more than any answer of the API: "
            f"check that {self.settings.base_url} is the VVP OpenAPI",
            request_id=headers.get("x-acs-request-id"),
            http_status=status,
            action=operation.action,
        )

    def _transport_error(self, operation: Operation[Any], error: BaseException, failure: _Failure) -> VVPError:
        """The provider's error for a library's; raise it outside the ``except`` block, so that an error
        whose text may quote a header is not even kept as its context."""
        kind = type(error).__name__
        text = failure.template.format(
            url=self.settings.base_url,
            timeout=f"{self.settings.timeout:g}",
            kind=kind,
            cause=f"{kind}: {error}" if str(error) else kind,
        )
        if failure is _Failure.INVALID_REQUEST:
            return VVPConfigurationError(f"{operation.action}: {text}")
        transport_error = VVPConnectionError(
            f"{operation.action}: {text}", sent=failure.sent, retryable=failure is not _Failure.TLS
        )
        transport_error.__cause__ = error
        return transport_error

    def _outcome_unknown(self, operation: Operation[Any], error: VVPError, failure: VVPError) -> VVPOutcomeUnknownError:
        return VVPOutcomeUnknownError(
            f"{operation.action} may have run: its answer was lost ({error}) and the check of its effect "
            f"failed too ({failure}). It is not sent again: look for its effect (the deployment's jobs, the job's "
            "status) before sending it again."
        )


def _retryable(operation: Operation[Any]) -> Callable[[BaseException], bool]:
    """Whether to repeat ``operation`` after an error: a start or a stop only when it surely did not run."""
    return lambda error: isinstance(error, VVPError) and error.retryable_for(idempotent=operation.idempotent)


def _needs_confirmation(error: VVPError) -> bool:
    """A start or stop failed in a way that may have run it: look for its effect before sending it again."""
    return error.retryable and error.maybe_ran


def _repeatable_after_confirmation(error: BaseException) -> bool:
    # An error that may have run reaches the retry only once confirm() found no effect: repeating is safe.
    return isinstance(error, VVPError) and error.retryable and not isinstance(error, VVPOutcomeUnknownError)


class VVPClient(_ClientBase):
    """Synchronous client: one ``requests.Session`` (and its connection pool) for all calls.

    :param settings: where and how to call.
    :param session: the session to send with, a new one by default; its http and https adapters are
        replaced by ones that end each attempt at its deadline.
    """

    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(self, settings: ClientSettings, *, session: requests.Session | None = None) -> None:
        super().__init__(settings)
        self.session = session or requests.Session()
        adapter = _DeadlineAdapter()
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, adapter)
        self._send_options: dict[str, Any] = {
            # Proxies, CA bundle and client certificate from the environment, read once: Session.request
            # would scan the whole environment on every call, a large share of a call's CPU time.
            **self.session.merge_environment_settings(settings.base_url, {}, None, None, None),
            # The body is read here, up to its cap; the adapter holds every read to the attempt's deadline.
            "stream": True,
            "timeout": urllib3.Timeout(connect=settings.timeout, read=settings.timeout, total=settings.timeout),
            "allow_redirects": False,
        }

    def call(self, operation: Operation[T]) -> T:
        """Send ``operation`` (retrying what is transient) and return its parsed answer."""
        result: T = Retrying(sleep=self.sleep, **self._retry_policy(operation, _retryable(operation)))(
            self._attempt, operation
        )
        return result

    def call_or_confirm(self, operation: Operation[T], confirm: Callable[[], T | None]) -> T:
        """Send a state-changing ``operation`` so that it acts at most once.

        When its answer is lost (a timeout, a reset, a 5xx), ``confirm()`` looks for its effect
        (a new job, a stopping job) and returns the result it finds, or None, and only then is
        the operation sent again. When ``confirm()`` fails too, :class:`~.api.errors.VVPOutcomeUnknownError`
        ends the call without sending it again.
        """

        def attempt() -> T:
            try:
                return self._attempt(operation)
            except VVPError as error:
                if not _needs_confirmation(error):
                    raise
                try:
                    confirmed = confirm()
                except VVPError as failure:
                    raise self._outcome_unknown(operation, error, failure) from failure
                if confirmed is None:
                    raise
                return confirmed

        result: T = Retrying(sleep=self.sleep, **self._retry_policy(operation, _repeatable_after_confirmation))(attempt)
        return result

    def close(self) -> None:
        self.session.close()

    def _attempt(self, operation: Operation[T]) -> T:
        request = self._prepare(operation, self._fixed or self._source.current())  # type: ignore[union-attr]
        try:
            response = self.session.send(_requests_prepared(request), **self._send_options)
            body = self._read_body(operation, response)
        except VVPError:
            raise
        except _LIBRARY_FAILURES as error:
            failed = self._transport_error(operation, error, _requests_failure(error))
        else:
            return self._answer(operation, response.status_code, response.headers, body)
        raise failed

    def _read_body(self, operation: Operation[Any], response: requests.Response) -> bytes:
        """The whole body, refused past :data:`MAX_BODY_BYTES`; read1 takes what has come, never waiting for more."""
        raw = response.raw
        try:
            self._check_length(operation, response.status_code, response.headers)
            chunks: list[bytes] = []
            size = 0
            while True:
                chunk = raw.read1(_READ_CHUNK_BYTES, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise self._too_large(operation, response.status_code, response.headers)
                chunks.append(chunk)
        except BaseException:
            response.close()  # a half-read connection cannot carry another request
            raise


class _DeadlineReader(io.RawIOBase):
    """A socket's reads held to a deadline: each waits at most the time left, so a server that drips
    its status line, headers or body one byte at a time cannot stretch an attempt past its timeout."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._reads = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the whole answer took longer than the timeout")
        self._sock.settimeout(left)
        return self._reads.readinto(buffer)

    def close(self) -> None:
        self._reads.close()  # gives the socket back, as http.client's own reader would
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading through a :class:`_DeadlineReader`."""

    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(_DeadlineSocket(sock, deadline), *args, **kwargs)  # type: ignore[arg-type]


class _DeadlineSocket:
    """What http.client's response asks of its socket (one reader), handing out a deadline-held one."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineConnection(http.client.HTTPConnection):
    """Reads of a connection's answers held to a deadline: the proxy's answer to CONNECT, then the server's."""

    def connect(self) -> None:
        # http.client reads the proxy's answer to CONNECT (the tunnel) with response_class, within connect().
        self._hold_reads_to(self.timeout)
        try:
            super().connect()
        except TimeoutError as error:
            # A tunnel or a TLS handshake that outlasts the timeout: nothing was sent, as with a slow TCP connect
            # (urllib3 would call it a read timeout).
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"connecting took longer than {self.timeout} s ({error})"
            ) from error

    def getresponse(self) -> Any:
        # urllib3 has set timeout to the attempt's time left (its total less the connecting): the deadline.
        self._hold_reads_to(self.timeout)
        return super().getresponse()

    def _hold_reads_to(self, seconds: float | None) -> None:
        deadline = time.monotonic() + (math.inf if seconds is None else seconds)
        self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)  # type: ignore[assignment]


class _DeadlineHTTPConnection(_DeadlineConnection, urllib3.connection.HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnection, urllib3.connection.HTTPSConnection):
    pass


class _DeadlineHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_DEADLINE_POOLS = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections, direct or through a proxy, read against the attempt's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _DEADLINE_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _DEADLINE_POOLS
        return manager


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
            self._identity,
            operation.action,
            operation.path,
            tuple(sorted(operation.query.items())),
            tuple(sorted(operation.headers.items())),
        )
        return await self._shared_endpoint().read(key, max_age, lambda: self._call(operation), not_before=not_before)

    async def call_or_confirm(self, operation: Operation[T], confirm: Callable[[], Awaitable[T | None]]) -> T:
        """Async :meth:`VVPClient.call_or_confirm`: ``confirm`` is awaited."""

        budget_ends = time.monotonic() + self.settings.budget

        async def attempt() -> T:
            try:
                return await self._attempt(operation, budget_ends)
            except VVPError as error:
                if not _needs_confirmation(error):
                    raise
                try:
                    confirmed = await confirm()
                except VVPError as failure:
                    raise self._outcome_unknown(operation, error, failure) from failure
                if confirmed is None:
                    raise
                return confirmed

        retrying = AsyncRetrying(sleep=self.sleep, **self._retry_policy(operation, _repeatable_after_confirmation))
        result: T = await retrying(attempt)
        return result

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
        retrying = AsyncRetrying(sleep=self.sleep, **self._retry_policy(operation, _retryable(operation)))
        result: T = await retrying(self._attempt, operation, time.monotonic() + self.settings.budget)
        return result

    async def _attempt(self, operation: Operation[T], budget_ends: float) -> T:
        endpoint = self._shared_endpoint()
        await endpoint.wait_turn(at_most=budget_ends - time.monotonic())
        request = self._prepare(operation, self._fixed or await self._source.acurrent())  # type: ignore[union-attr]
        progress = _Progress()
        try:
            async with asyncio.timeout(self.settings.timeout):
                status, headers, body = await self._exchange(endpoint.http, operation, request, progress)
        except VVPError:
            raise
        except _LIBRARY_FAILURES as error:
            # The attempt's deadline came while connecting (TCP, TLS, a proxy's tunnel): nothing was sent.
            connecting = isinstance(error, TimeoutError) and not progress.sent
            failed = self._transport_error(
                operation, error, _Failure.CONNECT_TIMEOUT if connecting else _httpx_failure(error)
            )
        else:
            try:
                return self._answer(operation, status, headers, body)
            except VVPApiError as error:
                if error.throttled or error.retry_after:
                    # The whole endpoint waits, so the other clients do not spend their attempts on it too.
                    endpoint.pause(min(error.retry_after or self.settings.retry_delay, MAX_RETRY_WAIT))
                raise
        raise failed

    async def _exchange(
        self, http: httpx.AsyncClient, operation: Operation[Any], request: PreparedRequest, progress: _Progress
    ) -> tuple[int, httpx.Headers, bytes]:
        async with http.stream(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body or None,
            timeout=self.settings.timeout,
            extensions={"trace": progress.trace},
        ) as response:
            self._check_length(operation, response.status_code, response.headers)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise self._too_large(operation, response.status_code, response.headers)
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)


class _Progress:
    """How far an async attempt got, from httpcore's trace events: whether its request went out.

    The request that opens a proxy's tunnel (CONNECT) is part of connecting, not the request.
    """

    def __init__(self) -> None:
        self.sent = False

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith(".send_request_headers.started") and info["request"].method != b"CONNECT":
            self.sent = True


# Whatever the libraries raise while sending and reading (requests', urllib3's, httpx's and httpcore's errors,
# socket and TLS errors, ValueError for what cannot be sent, and the odd other, such as anyio's ExceptionGroup)
# becomes the provider's error: the try blocks hold nothing but the libraries' calls.
_LIBRARY_FAILURES = Exception


def _requests_prepared(request: PreparedRequest) -> requests.PreparedRequest:
    prepared = requests.PreparedRequest()
    prepared.prepare_method(request.method)
    # The URL is already what was signed: RFC 3986-encoded ASCII, which requests' re-quoting would keep.
    prepared.url = request.url
    prepared.prepare_headers(request.headers)
    prepared.prepare_body(request.body or None, None)
    return prepared


def _requests_failure(error: BaseException) -> _Failure:
    if isinstance(error, ValueError):
        return _Failure.INVALID_REQUEST
    if isinstance(error, requests.exceptions.ProxyError | urllib3.exceptions.ProxyError):
        return _Failure.PROXY
    if isinstance(error, requests.ConnectTimeout):
        return _Failure.CONNECT_TIMEOUT
    if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return _Failure.NO_ANSWER
    if _tls_failure(error):
        return _Failure.TLS
    reason = getattr(error.args[0], "reason", None) if error.args else None
    # Anything else broke the exchange after it began: ChunkedEncodingError, ProtocolError, a reset, a bad gzip.
    if isinstance(error, requests.ConnectionError) and isinstance(reason, urllib3.exceptions.NewConnectionError):
        return _Failure.REFUSED
    return _Failure.BROKEN


def _httpx_failure(error: BaseException) -> _Failure:
    if isinstance(error, httpx.LocalProtocolError | httpx.UnsupportedProtocol | httpx.InvalidURL | ValueError):
        return _Failure.INVALID_REQUEST
    if isinstance(error, httpx.ProxyError):
        return _Failure.PROXY
    # A timeout before a TLS error: a slow handshake is cut short (its cause an SSLWantReadError), not refused.
    if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
        return _Failure.CONNECT_TIMEOUT
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return _Failure.NO_ANSWER
    if _tls_failure(error):
        return _Failure.TLS
    if isinstance(error, httpx.ConnectError):
        return _Failure.REFUSED
    return _Failure.BROKEN


_TLS_ERRORS = (ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError)
# The peer closed a TLS connection (a reset like any other), or a read or write was cut short (a timeout):
# not a certificate or handshake problem.
_NOT_TLS_FAILURES = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _tls_failure(error: BaseException) -> bool:
    """A TLS certificate or handshake failure among the error's causes, which no repeat heals."""
    causes = list(_causes(error))
    return any(isinstance(cause, _TLS_ERRORS) for cause in causes) and not any(
        isinstance(cause, _NOT_TLS_FAILURES) for cause in causes
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: its cause and context, urllib3's ``reason``, exceptions in its args."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
