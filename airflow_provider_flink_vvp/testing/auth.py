"""The gateway's check of an ACS3-HMAC-SHA256 signature, built on the client's own signing steps."""

from __future__ import annotations

import heapq
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from airflow_provider_flink_vvp.api.signing import (
    canonical_request,
    hex_sha256,
    is_signed_by_default,
    normalize_headers,
    parse_authorization,
    select_signed_headers,
    signature,
    string_to_sign,
)

MAX_CLOCK_SKEW_SECONDS = 15 * 60
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DATE_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.ASCII)
_REQUIRED_HEADERS = ("x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")


class AuthError(Exception):
    """A refused request, in the gateway's terms: HTTP status, ``Code`` and ``Message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class SignatureVerifier:
    """Checks Authorization, AccessKey, date, body hash, signature, security token and nonce, in that order.

    Nonces are remembered only while a request carrying them could still pass the date
    check, so the memory stays bounded by the request rate over 30 minutes.
    """

    def __init__(
        self,
        secret_of: Callable[[str], str | None],
        now: Callable[[], float],
        token_problem: Callable[[str, str | None], tuple[str, str] | None] = lambda key, token: None,
    ) -> None:
        self._secret_of = secret_of
        self._token_problem = token_problem
        self._now = now
        self._nonce_expiry: list[tuple[float, str]] = []  # a heap: the oldest expiry first
        self._nonces: set[str] = set()
        self._lock = threading.Lock()

    def verify(
        self, *, method: str, raw_path: str, query: Mapping[str, str], headers: Iterable[tuple[str, str]], body: bytes
    ) -> str:
        """The AccessKey ID of a correctly signed request; raise AuthError otherwise."""
        normalized = normalize_headers(headers)
        try:
            access_key_id, signed_names, sent_signature = parse_authorization(normalized["authorization"])
        except KeyError:
            raise AuthError(400, "IncompleteSignature", "the Authorization header is missing") from None
        except ValueError as exc:
            raise AuthError(400, "IncompleteSignature", f"the Authorization header is malformed: {exc}") from None
        missing = [name for name in _REQUIRED_HEADERS if not normalized.get(name)]
        unsigned = sorted({name for name in normalized if is_signed_by_default(name)} - set(signed_names))
        if missing or unsigned:
            problem = f"missing headers {missing}" if missing else f"SignedHeaders lacks {unsigned}"
            raise AuthError(400, "IncompleteSignature", f"the signature is incomplete: {problem}")

        secret = self._secret_of(access_key_id)
        if secret is None:
            raise AuthError(404, "InvalidAccessKeyId.NotFound", f"Specified access key is not found: {access_key_id}")

        sent_at = _parse_date(normalized["x-acs-date"])
        now = self._now()
        if abs(now - sent_at) > MAX_CLOCK_SKEW_SECONDS:
            raise AuthError(
                400,
                "InvalidTimeStamp.Expired",
                f"Specified time stamp or date value is expired: {normalized['x-acs-date']} is more than "
                f"{MAX_CLOCK_SKEW_SECONDS // 60} minutes from the server's {_format_date(now)}",
            )

        payload_hash = normalized["x-acs-content-sha256"]
        if payload_hash.lower() != hex_sha256(body):
            raise AuthError(400, "ContentSHA256Mismatch", "x-acs-content-sha256 is not the SHA-256 of the body")

        expected = string_to_sign(
            canonical_request(method, raw_path, query, select_signed_headers(normalized, signed_names), payload_hash)
        )
        if not hmac.compare_digest(signature(secret, expected), sent_signature):
            raise AuthError(
                400,
                "SignatureDoesNotMatch",
                f"Specified signature does not match our calculation. Server string to sign is: {expected!r}",
            )

        # The token is signed like every x-acs-* header: checked once the signature holds.
        refusal = self._token_problem(access_key_id, normalized.get("x-acs-security-token"))
        if refusal is not None:
            raise AuthError(400, *refusal)
        self._remember_nonce(normalized["x-acs-signature-nonce"], sent_at + MAX_CLOCK_SKEW_SECONDS, now)
        return access_key_id

    def _remember_nonce(self, nonce: str, expires_at: float, now: float) -> None:
        with self._lock:
            while self._nonce_expiry and self._nonce_expiry[0][0] < now:
                self._nonces.discard(heapq.heappop(self._nonce_expiry)[1])
            if nonce in self._nonces:
                raise AuthError(400, "SignatureNonceUsed", f"Specified signature nonce was used already: {nonce}")
            self._nonces.add(nonce)
            heapq.heappush(self._nonce_expiry, (expires_at, nonce))


def _format_date(epoch_seconds: float) -> str:
    return time.strftime(_DATE_FORMAT, time.gmtime(epoch_seconds))


def _parse_date(value: str) -> float:
    try:
        if not _DATE_PATTERN.fullmatch(value):
            raise ValueError(value)
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise AuthError(
            400, "InvalidTimeStamp.Format", f"x-acs-date must look like 2024-01-31T12:00:00Z, got {value!r}"
        ) from None
