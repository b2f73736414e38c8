"""Errors of the VVP OpenAPI, each saying what went wrong and, where known, how to fix it."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

THROTTLING_CODES = frozenset({"Throttling", "Throttling.User", "Throttling.Api"})
# Refused at the gateway, before the operation ran: safe to repeat even for a start or a stop.
REFUSED_BEFORE_RUNNING_CODES = THROTTLING_CODES | {"SignatureNonceUsed"}
RETRYABLE_CODES = REFUSED_BEFORE_RUNNING_CODES | {"ServiceUnavailable", "InternalError"}
# Too Many Requests: a refusal before running, whatever the body says.
THROTTLED_STATUS = 429
# An answer the provider cannot read (not the API's shape, an HTML page, an oversize body): a broken gateway or a
# server mid-deploy as often as a wrong endpoint, so retried; a start or stop answered so may have run.
INVALID_RESPONSE = "InvalidResponse"
REDACTED = "<redacted>"
#: The shortest piece of a cut secret that :func:`redact` still takes out.
MIN_SECRET_FRAGMENT = 6
# The parts of a signed Authorization header a server may echo: the key ID, the signed headers, the signature.
_AUTHORIZATION_PARTS = re.compile(r"\b(?:Credential|SignedHeaders|Signature)=[^\s,;&\"']*")

_HINTS = {
    "SignatureDoesNotMatch": "The AccessKey Secret does not belong to this AccessKey ID: check the connection's "
    "password (AccessKey Secret).",
    "IncompleteSignature": "The request signature is incomplete: check the AccessKey ID and Secret.",
    "InvalidAccessKeyId.NotFound": "This AccessKey ID does not exist: check the connection's login (AccessKey ID).",
    "InvalidAccessKeyId.Inactive": "This AccessKey ID is disabled: enable it in the RAM console or use another one.",
    "InvalidTimeStamp.Expired": "This machine's clock differs from the server's by more than 15 minutes: "
    "synchronise it (NTP).",
    "InvalidSecurityToken.Expired": "The STS security token has expired: refresh the connection's security_token.",
}
_PERMISSION_CODES = frozenset({"Forbidden.RAM", "Forbidden", "NoPermission"})


class VVPError(Exception):
    """Base of every error this provider raises about the VVP service.

    ``retryable``: the same request may succeed later. ``maybe_ran``: the service may have run the
    operation although no success came back, so a start or a stop must check before repeating.
    """

    retryable = False
    maybe_ran = False

    def retryable_for(self, *, idempotent: bool) -> bool:
        return self.retryable and (idempotent or not self.maybe_ran)


class VVPApiError(VVPError):
    """The service answered with an error: ``success: false``, a gateway error, or a body that is not the API's.

    :param code: the API's error code (``Throttling.User``, ``SignatureDoesNotMatch`` ...).
    :param message: the API's error message.
    :param request_id: the request ID to quote to Alibaba Cloud support.
    :param http_status: the HTTP status of the response.
    :param action: the API action that was called, for the permission hint.
    :param retry_after: seconds the server asked to wait (``x-acs-retry-after`` or ``Retry-After``), if it did.
    """

    def __init__(
        self,
        *,
        code: str,
        message: str,
        request_id: str | None,
        http_status: int,
        action: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        self.action = action
        self.retry_after = retry_after
        super().__init__(self._text())

    @property
    def throttled(self) -> bool:
        """The service refused the request for its rate: a throttling code, or HTTP 429."""
        return self.code in THROTTLING_CODES or self.http_status == THROTTLED_STATUS

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.throttled or self.code in RETRYABLE_CODES or self.http_status >= 500 or self.unreadable

    @property
    def maybe_ran(self) -> bool:  # type: ignore[override]
        if self.unreadable:
            return True
        return self.http_status >= 500 and not self.throttled and self.code not in REFUSED_BEFORE_RUNNING_CODES

    @property
    def unreadable(self) -> bool:
        """The answer was not the API's (code ``InvalidResponse``): what the request did is unknown."""
        return self.code == INVALID_RESPONSE

    def redacted(self, secrets: Collection[str]) -> VVPApiError:
        """This error with ``secrets`` and any echoed Authorization header parts cut out of the server's texts;
        itself when they hold none. The copy has no cause: a cause's text may hold them too."""
        texts = {"code": self.code, "message": self.message, "request_id": self.request_id}
        clean = {name: redact(text, secrets) if text else text for name, text in texts.items()}
        if clean == texts:
            return self
        return VVPApiError(
            code=clean["code"] or "",
            message=clean["message"] or "",
            request_id=clean["request_id"],
            http_status=self.http_status,
            action=self.action,
            retry_after=self.retry_after,
        )

    @property
    def hint(self) -> str | None:
        if self.code in _PERMISSION_CODES:
            needed = f"stream:{self.action}" if self.action else "the stream:<Action> permission"
            return f"The RAM user lacks {needed}: grant it in the RAM console."
        return _HINTS.get(self.code)

    @property
    def summary(self) -> str:
        """``code: message (HTTP status, requestId id)`` and the hint: the error without the action."""
        text = f"{self.code}: {self.message} (HTTP {self.http_status}, requestId {self.request_id or 'none'})"
        return f"{text}. {self.hint}" if self.hint else text

    def _text(self) -> str:
        return f"{self.action} failed: {self.summary}" if self.action else self.summary


def redact(text: str, secrets: Collection[str]) -> str:
    """``text`` with every one of ``secrets`` and every echoed Authorization header part replaced by a mark.

    A secret that a shortened text cut in two is caught too: any run of at least
    :data:`MIN_SECRET_FRAGMENT` characters that begins or ends a secret is replaced.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
            text = _fragments_of(secret).sub(REDACTED, text)
    return _AUTHORIZATION_PARTS.sub(REDACTED, text)


@functools.lru_cache(maxsize=8)
def _fragments_of(secret: str) -> re.Pattern[str]:
    """A pattern of the secret's heads and tails of at least MIN_SECRET_FRAGMENT characters, longest first."""
    lengths = range(len(secret) - 1, MIN_SECRET_FRAGMENT - 1, -1)
    pieces = [secret[:length] for length in lengths] + [secret[-length:] for length in lengths]
    return re.compile("|".join(map(re.escape, pieces)) or "(?!)")


class VVPConnectionError(VVPError):
    """The request got no whole answer: connection refused or reset, a broken or late answer, a TLS failure.

    :param sent: whether the request may have reached the service (False when the connection was never made).
    :param retryable: False for what no repeat heals, such as a TLS certificate the client does not trust.
    """

    def __init__(self, message: str, *, sent: bool, retryable: bool = True) -> None:
        super().__init__(message)
        self.maybe_ran = sent
        self.retryable = retryable


class VVPOutcomeUnknownError(VVPError):
    """A start or a stop may have run: its answer was lost and the check of its effect failed too.

    It is not sent again within the call. Retryable: a later look at the deployment's jobs (or the
    job) tells whether it ran.
    """

    retryable = True
    maybe_ran = True


class VVPConfigurationError(VVPError, ValueError):
    """A setting is missing or invalid; the message names it and how to set it."""


class DeploymentNotFoundError(VVPError):
    """No deployment has this name in this namespace and workspace."""

    def __init__(self, *, name: str, namespace: str, workspace: str) -> None:
        self.name = name
        self.namespace = namespace
        self.workspace = workspace
        super().__init__(
            f"No deployment named {name!r} in namespace {namespace!r} of workspace {workspace!r}: "
            "check the name, namespace and workspace."
        )
