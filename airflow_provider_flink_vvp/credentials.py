"""Where a connection's credentials come from, and temporary ones that renew themselves before they expire.

A connection's extra ``credential_type`` names the source: ``access_key`` (the default) and ``sts`` sign
with the fixed AccessKey (and STS token) of the connection or the environment; ``ram_role_arn``,
``ecs_ram_role``, ``oidc_role_arn`` and ``default_chain`` get temporary credentials from a provider of
the official ``alibabacloud-credentials`` library (the ``credentials`` extra of this package), imported
only when such a connection is first used.

No Airflow imports: the hook hands in how to mask a secret as it appears.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from airflow_provider_flink_vvp.api.errors import VVPConfigurationError, VVPError, redact
from airflow_provider_flink_vvp.api.operations import Credentials

ACCESS_KEY = "access_key"
STS = "sts"
RAM_ROLE_ARN = "ram_role_arn"
ECS_RAM_ROLE = "ecs_ram_role"
OIDC_ROLE_ARN = "oidc_role_arn"
DEFAULT_CHAIN = "default_chain"
#: Every value of the extra ``credential_type``; the first is the default.
CREDENTIAL_TYPES = (ACCESS_KEY, STS, RAM_ROLE_ARN, ECS_RAM_ROLE, OIDC_ROLE_ARN, DEFAULT_CHAIN)
#: The types whose credentials come from the alibabacloud-credentials library.
PROVIDED_TYPES = (RAM_ROLE_ARN, ECS_RAM_ROLE, OIDC_ROLE_ARN, DEFAULT_CHAIN)
#: The types that sign with (or assume a role from) the connection's AccessKey.
ACCESS_KEY_TYPES = (ACCESS_KEY, STS, RAM_ROLE_ARN)

DEFAULT_ROLE_SESSION_NAME = "airflow-flink-vvp"
# STS's own bounds of an assumed role's session (DurationSeconds); the role's maximum may be lower.
MIN_SESSION_SECONDS = 900
MAX_SESSION_SECONDS = 43200
INSTALL_HINT = "pip install 'airflow-provider-flink-vvp[credentials]'"

#: The environment variables of RRSA (ACK's OIDC role), read when the extras of the same meaning are not set.
OIDC_ENVIRONMENT = {
    "role_arn": "ALIBABA_CLOUD_ROLE_ARN",
    "oidc_provider_arn": "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "oidc_token_file": "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
}

#: The extras each type reads besides the common ones; any other credential extra is a slip.
TYPE_EXTRAS: Mapping[str, tuple[str, ...]] = {
    ACCESS_KEY: ("security_token",),
    STS: ("security_token",),
    RAM_ROLE_ARN: (
        "security_token",
        "role_arn",
        "role_session_name",
        "role_session_expiration",
        "policy",
        "external_id",
        "sts_endpoint",
    ),
    ECS_RAM_ROLE: ("role_name",),
    OIDC_ROLE_ARN: (
        "role_arn",
        "oidc_provider_arn",
        "oidc_token_file",
        "role_session_name",
        "role_session_expiration",
        "policy",
        "sts_endpoint",
    ),
    DEFAULT_CHAIN: (),
}
CREDENTIAL_EXTRAS = tuple(dict.fromkeys(name for names in TYPE_EXTRAS.values() for name in names))

# A role's ARN as RAM writes it: acs:ram::<account ID>:role/<role name>.
_ROLE_ARN = re.compile(r"acs:ram::\d+:role/[A-Za-z0-9.@_\-/]+")
_OIDC_PROVIDER_ARN = re.compile(r"acs:ram::\d+:oidc-provider/[A-Za-z0-9.@_\-]+")
_SESSION_NAME = re.compile(r"[A-Za-z0-9.@_\-]{2,64}")
_ROLE_NAME = re.compile(r"[A-Za-z0-9.@_\-]{1,64}")
_ROLE_ARN_LIKE = "a role ARN like acs:ram::123456789012:role/flink-ops"
_EXTERNAL_ID = re.compile(r"[\w.@:=,+/\-]{2,1224}")
_PATH = re.compile(r"[^\x00]+")
_STS_ENDPOINT = re.compile(r"(https?://)?[A-Za-z0-9.\-]+(:\d{1,5})?")
# Seconds before an expiry at which temporary credentials are renewed (less for very short-lived ones).
REFRESH_MARGIN_SECONDS = 180.0
# How often credentials of unknown expiry (the default chain hides it) are asked for again: the library
# answers from its cache until its own renewal is due.
UNKNOWN_EXPIRY_RECHECK_SECONDS = 60.0
# STS answers these codes for a request it refused for its rate: worth another try, unlike its other 4xx.
_STS_THROTTLING = re.compile(r"Throttling(\..*)?")
#: The API's answer to a request signed with an expired STS token.
EXPIRED_TOKEN_CODE = "InvalidSecurityToken.Expired"  # noqa: S105 - an error code
_HTTP_FAILURE = re.compile(r"http_code: (\d+), result: (.*)", re.DOTALL)
_URL_QUERY = re.compile(r"\?[^\s'\"()]+")


class CredentialsSource(Protocol):
    """What the clients sign with when credentials change over time: the current ones, sync or async."""

    #: Stands for the credentials in shared reads' keys (see :mod:`.sharing`): stable across renewals.
    identity: str
    #: The secrets of the credentials lately handed out, for the clients to cut out of error texts.
    secrets: tuple[str, ...]

    def current(self) -> Credentials: ...

    async def acurrent(self) -> Credentials: ...

    def expired(self, refusal: VVPError) -> VVPError:
        """The service refused the current credentials as expired: renew them at the next request; the error
        to raise now."""
        ...


def secrets_of(credentials: Credentials | CredentialsSource) -> tuple[str, ...]:
    """The secrets of fixed credentials; a source's, of the credentials it handed out lately."""
    if isinstance(credentials, Credentials):
        return tuple(secret for secret in (credentials.access_key_secret, credentials.security_token) if secret)
    return tuple(credentials.secrets)


class VVPCredentialsError(VVPError):
    """Temporary credentials could not be had: STS refused the role, or could not be reached.

    :param retryable: whether asking again may succeed (STS unreachable, a 5xx, throttling); a refusal
        (no such role, no permission to assume it) is not.
    """

    maybe_ran = False

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class CredentialSpec:
    """What a connection says about its credentials, checked, before anything is fetched.

    :param conn_id: the connection, named in errors.
    :param credential_type: one of :data:`CREDENTIAL_TYPES`.
    :param access_key: the fixed AccessKey (``access_key``, ``sts``), or the one a role is assumed with
        (``ram_role_arn``); None for the other types.
    :param timeout: seconds each request to STS (or the ECS metadata service) may take to connect, and to read.
    """

    conn_id: str
    credential_type: str
    access_key: Credentials | None = None
    role_arn: str | None = None
    role_session_name: str = DEFAULT_ROLE_SESSION_NAME
    role_session_expiration: int | None = None
    policy: str | None = field(default=None, repr=False)
    external_id: str | None = field(default=None, repr=False)
    sts_endpoint: str | None = None
    role_name: str | None = None
    oidc_provider_arn: str | None = None
    oidc_token_file: str | None = None
    timeout: float = 30.0

    @property
    def description(self) -> str:
        """The type and what it assumes (never a secret), for errors and the connection test."""
        what = self.role_arn or (f"role {self.role_name}" if self.role_name else None)
        return f"credential_type {self.credential_type!r}" + (f" ({what})" if what else "")


def credential_spec(
    *,
    conn_id: str,
    extra: Mapping[str, Any],
    access_key: Callable[[], Credentials],
    has_access_key: bool,
    environ: Mapping[str, str],
    timeout: float,
) -> CredentialSpec:
    """The connection's :class:`CredentialSpec`, every field checked; VVPConfigurationError names the
    connection, the field, its value (never a secret's) and what it may be.

    :param extra: the connection's extras.
    :param access_key: reads the connection's (else the environment's) AccessKey, as the ``access_key`` type does.
    :param has_access_key: whether the connection's login or password is set.
    :param environ: the environment, for the OIDC (RRSA) variables.
    """
    credential_type = extra.get("credential_type")
    if credential_type is None or (isinstance(credential_type, str) and not credential_type.strip()):
        credential_type = ACCESS_KEY
    normalized = credential_type.strip().lower() if isinstance(credential_type, str) else credential_type
    if normalized not in CREDENTIAL_TYPES:
        raise VVPConfigurationError(
            f"Connection {conn_id!r}: extra 'credential_type' must be one of {', '.join(CREDENTIAL_TYPES)}, "
            f"got {credential_type!r}"
        )
    stray = [name for name in CREDENTIAL_EXTRAS if name not in TYPE_EXTRAS[normalized] and _given(extra.get(name))]
    if stray:
        users = {name: [kind for kind, names in TYPE_EXTRAS.items() if name in names] for name in stray}
        raise VVPConfigurationError(
            f"Connection {conn_id!r}: credential_type {normalized!r} does not use "
            + "; ".join(f"extra {name!r} (only {', '.join(kinds)})" for name, kinds in users.items())
            + ": remove it or set credential_type to the type it belongs to"
        )
    if normalized not in ACCESS_KEY_TYPES and has_access_key:
        raise VVPConfigurationError(
            f"Connection {conn_id!r}: credential_type {normalized!r} does not use the login and password "
            f"(AccessKey): leave them empty, or use credential_type {ACCESS_KEY!r} or {RAM_ROLE_ARN!r}"
        )
    fallback = {name: environ.get(variable) for name, variable in OIDC_ENVIRONMENT.items()}
    text = _TextExtras(conn_id, normalized, extra, fallback if normalized == OIDC_ROLE_ARN else {})
    spec = CredentialSpec(conn_id=conn_id, credential_type=normalized, timeout=timeout)
    if normalized in ACCESS_KEY_TYPES:
        key = access_key()
        if normalized == STS and not key.security_token:
            raise VVPConfigurationError(
                f"Connection {conn_id!r}: credential_type 'sts' needs the STS token: set the extra 'security_token' "
                "(or the environment variable ALIBABA_CLOUD_SECURITY_TOKEN with an AccessKey from the environment)"
            )
        spec = replace(spec, access_key=key)
    if normalized in (RAM_ROLE_ARN, OIDC_ROLE_ARN):
        spec = replace(spec, role_arn=text.required("role_arn", _ROLE_ARN, _ROLE_ARN_LIKE), **_session_extras(text))
    if normalized == RAM_ROLE_ARN:
        spec = replace(spec, external_id=text.optional("external_id", _EXTERNAL_ID, "2 to 1224 characters"))
    elif normalized == OIDC_ROLE_ARN:
        spec = replace(
            spec,
            oidc_provider_arn=text.required(
                "oidc_provider_arn",
                _OIDC_PROVIDER_ARN,
                "an OIDC provider ARN like acs:ram::123456789012:oidc-provider/ack-rrsa-c1234",
            ),
            oidc_token_file=text.required("oidc_token_file", _PATH, "the path of the OIDC token file"),
        )
    elif normalized == ECS_RAM_ROLE:
        spec = replace(spec, role_name=text.optional("role_name", _ROLE_NAME, "the instance's RAM role name"))
    return spec


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


class _TextExtras:
    """A type's string extras (else the environment variable of the same meaning), each checked by a pattern."""

    def __init__(
        self, conn_id: str, credential_type: str, extra: Mapping[str, Any], fallback: Mapping[str, str | None]
    ) -> None:
        self.conn_id = conn_id
        self.credential_type = credential_type
        self.extra = extra
        self.fallback = fallback

    def optional(self, name: str, pattern: re.Pattern[str], wanted: str) -> str | None:
        value, source = self.extra.get(name), f"extra {name!r}"
        if not _given(value) and _given(self.fallback.get(name)):
            value, source = self.fallback[name], f"environment variable {OIDC_ENVIRONMENT[name]}"
        if not _given(value):
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
            raise VVPConfigurationError(f"Connection {self.conn_id!r}: {source} must be {wanted}, got {value!r}")
        return value.strip()

    def required(self, name: str, pattern: re.Pattern[str], wanted: str) -> str:
        value = self.optional(name, pattern, wanted)
        if value is None:
            variable = f" (or the environment variable {OIDC_ENVIRONMENT[name]})" if name in self.fallback else ""
            raise VVPConfigurationError(
                f"Connection {self.conn_id!r}: credential_type {self.credential_type!r} needs the extra "
                f"{name!r}{variable}: {wanted}"
            )
        return value


def _session_extras(text: _TextExtras) -> dict[str, Any]:
    """``role_session_name``, ``role_session_expiration``, ``policy`` and ``sts_endpoint``, checked."""
    extra, conn_id = text.extra, text.conn_id
    expiration = extra.get("role_session_expiration")
    if _given(expiration):
        seconds = expiration.strip() if isinstance(expiration, str) else expiration
        if isinstance(seconds, str) and seconds.isdigit():
            seconds = int(seconds)
        if type(seconds) is not int or not MIN_SESSION_SECONDS <= seconds <= MAX_SESSION_SECONDS:
            raise VVPConfigurationError(
                f"Connection {conn_id!r}: extra 'role_session_expiration' must be a whole number of seconds from "
                f"{MIN_SESSION_SECONDS} to {MAX_SESSION_SECONDS} (at most the role's maximum session duration), "
                f"got {expiration!r}"
            )
    else:
        seconds = None
    policy = extra.get("policy")
    if _given(policy):
        if isinstance(policy, Mapping):
            policy = json.dumps(policy)
        try:
            parsed = json.loads(policy) if isinstance(policy, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise VVPConfigurationError(
                f"Connection {conn_id!r}: extra 'policy' must be a RAM policy document (a JSON object), got {policy!r}"
            )
    else:
        policy = None
    return {
        "role_session_name": text.optional("role_session_name", _SESSION_NAME, "2 to 64 letters, digits or . @ - _")
        or DEFAULT_ROLE_SESSION_NAME,
        "role_session_expiration": seconds,
        "policy": policy,
        "sts_endpoint": text.optional(
            "sts_endpoint", _STS_ENDPOINT, "a host like sts.cn-hangzhou.aliyuncs.com (or http://host:port)"
        ),
    }


class RefreshingCredentials:
    """Temporary credentials from a provider of the alibabacloud-credentials library, renewed before they expire.

    Between renewals :meth:`current` and :meth:`acurrent` hand out the same
    :class:`~.api.operations.Credentials` after one clock read: no I/O, no thread. A renewal asks the library
    (its async API on the event loop), once for all concurrent callers, and passes each new secret to ``mask``
    (or ``amask``) before anything can log it.

    :param spec: the connection's credential settings.
    :param mask: registers secrets with the log masker (sync).
    :param amask: the same, for the event loop.
    """

    def __init__(
        self,
        spec: CredentialSpec,
        *,
        mask: Callable[[Sequence[str]], None],
        amask: Callable[[Sequence[str]], Awaitable[None]],
    ) -> None:
        self.spec = spec
        self._mask = mask
        self._amask = amask
        base = spec.access_key.access_key_id if spec.access_key else ""
        self.identity = f"{spec.credential_type}:{spec.role_arn or spec.role_name or ''}:{base}"
        self.secrets: tuple[str, ...] = _secrets_of(spec.access_key) if spec.access_key else ()
        self._credentials: Credentials | None = None
        self._fresh_until = 0.0
        self._provider: Any = None
        self._lock = threading.Lock()
        self._async_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def __repr__(self) -> str:
        return f"RefreshingCredentials({self.spec.description})"

    def current(self) -> Credentials:
        """The credentials to sign with now, renewed first when they are due."""
        credentials = self._credentials
        if credentials is not None and time.time() < self._fresh_until:
            return credentials
        with self._lock:
            if self._credentials is None or time.time() >= self._fresh_until:
                fetched = self._fetch(lambda provider: provider.get_credentials())
                self._mask(_secrets_of(fetched[0]))
                self._use(*fetched)
            return self._credentials  # type: ignore[return-value]

    async def acurrent(self) -> Credentials:
        """:meth:`current` for the event loop: a renewal uses the library's async API, bounded in time."""
        credentials = self._credentials
        if credentials is not None and time.time() < self._fresh_until:
            return credentials
        # One renewal at a time: the library's own lock is a thread lock, which would block the loop.
        async with self._loop_lock():
            if self._credentials is None or time.time() >= self._fresh_until:
                fetched = await self._afetch()
                await self._amask(_secrets_of(fetched[0]))
                self._use(*fetched)
            return self._credentials  # type: ignore[return-value]

    def expired(self, refusal: VVPError) -> VVPCredentialsError:
        """:meth:`CredentialsSource.expired`: a retryable error, as renewed credentials may well be accepted."""
        self._fresh_until = 0.0
        return VVPCredentialsError(
            f"Connection {self.spec.conn_id!r}: the service found the credentials of {self.spec.description} "
            f"expired before this machine did ({refusal}); they are renewed for the next attempt. Check this "
            "machine's clock.",
            retryable=True,
        )

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._async_lock is None or self._async_lock[0] is not loop:
            self._async_lock = (loop, asyncio.Lock())
        return self._async_lock[1]

    def _use(self, credentials: Credentials, expiration: float | None) -> None:
        now = time.time()
        if expiration is None:
            fresh_until = now + UNKNOWN_EXPIRY_RECHECK_SECONDS
        else:
            fresh_until = expiration - min(REFRESH_MARGIN_SECONDS, max(expiration - now, 0.0) / 3)
        # The secrets lately handed out stay redacted a while: an answer may come after a renewal.
        base = _secrets_of(self.spec.access_key) if self.spec.access_key else ()
        previous = _secrets_of(self._credentials) if self._credentials else ()
        self.secrets = tuple(dict.fromkeys((*_secrets_of(credentials), *previous, *base)))
        self._credentials = credentials
        self._fresh_until = fresh_until

    def _fetch(self, get: Callable[[Any], Any]) -> tuple[Credentials, float | None]:
        try:
            fetched = get(self._library_provider())
        except VVPError:
            raise
        except Exception as error:  # whatever the library and its HTTP clients raise
            failure = self._failure(error)
        else:
            return self._converted(fetched)
        raise failure

    async def _afetch(self) -> tuple[Credentials, float | None]:
        provider = self._library_provider()
        try:
            # The library's timeouts bound each connect and read; this bounds the whole renewal.
            async with asyncio.timeout(self._renewal_budget):
                fetched = await provider.get_credentials_async()
        except VVPError:
            raise
        except Exception as error:
            failure = self._failure(error)
        else:
            return self._converted(fetched)
        raise failure

    @property
    def _renewal_budget(self) -> float:
        # Connecting and reading, for the token file or metadata too, and a role assumed from another.
        return 4 * self.spec.timeout

    def _converted(self, fetched: Any) -> tuple[Credentials, float | None]:
        try:
            credentials = Credentials(
                fetched.get_access_key_id(), fetched.get_access_key_secret(), fetched.get_security_token() or None
            )
        except VVPConfigurationError as error:
            raise VVPCredentialsError(
                f"Connection {self.spec.conn_id!r}: {self.spec.description} got credentials it cannot sign with "
                f"({error})",
                retryable=True,
            ) from None
        expiration = fetched.get_expiration()
        if expiration and expiration <= time.time():
            # The library hands back its last credentials when a renewal brings ones already expired.
            raise VVPCredentialsError(
                f"Connection {self.spec.conn_id!r}: {self.spec.description} got credentials that expired at "
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expiration))}; they are not used. Check this "
                "machine's clock.",
                retryable=True,
            )
        return credentials, float(expiration) if expiration else None

    def _failure(self, error: BaseException) -> VVPCredentialsError:
        """The provider's error for a library's: what STS said (code, requestId) and whether to try again."""
        spec = self.spec
        retryable, detail = _classify(error)
        what = "assume the role" if spec.role_arn else "get credentials"
        where = f" from {spec.sts_endpoint}" if spec.sts_endpoint else ""
        kind = "a transient failure, tried again" if retryable else "not retried"
        return VVPCredentialsError(
            redact(
                f"Connection {spec.conn_id!r}: {spec.description} could not {what}{where}: {detail} ({kind}).",
                self.secrets,
            ),
            retryable=retryable,
        )

    def _library_provider(self) -> Any:
        if self._provider is None:
            self._provider = library_provider(self.spec)
        return self._provider


def _classify(error: BaseException) -> tuple[bool, str]:
    """Whether a library error is worth another try, and what to say of it."""
    if isinstance(error, TimeoutError):
        return True, "no answer in time"
    # An HTTP library's text quotes the request's URL, whose query holds the signature and the tokens sent.
    text = _URL_QUERY.sub("?<query>", str(error) or type(error).__name__)
    answered = _HTTP_FAILURE.search(text)
    if answered is None:
        if isinstance(error, ValueError | FileNotFoundError | PermissionError):  # a setting, the token file
            return False, f"{type(error).__name__}: {text}"
        # Unreachable (the library's RetryError wraps connection errors), or an answer it could not read.
        return True, f"{type(error).__name__}: {text}"
    status, body = int(answered.group(1)), answered.group(2)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return status >= 500, f"HTTP {status}, an answer that is not STS's: {body[:200]!r}"
    code = str(document.get("Code") or "Unknown")
    retryable = status >= 500 or bool(_STS_THROTTLING.fullmatch(code))
    message = document.get("Message") or ""
    return retryable, f"STS answered {code}: {message} (HTTP {status}, requestId {document.get('RequestId') or 'none'})"


def _secrets_of(credentials: Credentials) -> tuple[str, ...]:
    return tuple(secret for secret in (credentials.access_key_secret, credentials.security_token) if secret)


def library_provider(spec: CredentialSpec) -> Any:
    """The alibabacloud-credentials provider of ``spec``; VVPConfigurationError when the library is missing."""
    try:
        from alibabacloud_credentials import provider as providers
        from alibabacloud_credentials.http import HttpOptions
    except ImportError:
        raise VVPConfigurationError(
            f"Connection {spec.conn_id!r}: credential_type {spec.credential_type!r} needs the alibabacloud-credentials "
            f"library: {INSTALL_HINT}"
        ) from None
    milliseconds = int(spec.timeout * 1000)
    options = HttpOptions(connect_timeout=milliseconds, read_timeout=milliseconds)
    session = {
        "role_arn": spec.role_arn,
        "role_session_name": spec.role_session_name,
        "policy": spec.policy,
        "sts_endpoint": spec.sts_endpoint,
        "http_options": options,
    }
    if spec.role_session_expiration is not None:
        session["duration_seconds"] = spec.role_session_expiration
    if spec.credential_type == RAM_ROLE_ARN:
        key = spec.access_key
        assert key is not None  # checked by credential_spec
        return providers.RamRoleArnCredentialsProvider(
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            security_token=key.security_token,
            external_id=spec.external_id,
            **session,
        )
    if spec.credential_type == OIDC_ROLE_ARN:
        return providers.OIDCRoleArnCredentialsProvider(
            oidc_provider_arn=spec.oidc_provider_arn, oidc_token_file_path=spec.oidc_token_file, **session
        )
    if spec.credential_type == ECS_RAM_ROLE:
        # No background scheduler thread per provider: credentials are renewed when a request needs them.
        return providers.EcsRamRoleCredentialsProvider(role_name=spec.role_name, async_update_enabled=False)
    return providers.DefaultCredentialsProvider()
