"""Turn an HTTP response into the envelope's data, or into the right VVPApiError."""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from airflow_provider_flink_vvp.api.errors import INVALID_RESPONSE, VVPApiError, redact
from airflow_provider_flink_vvp.api.models import MAX_LONG, describe_value

T = TypeVar("T")

RETRY_AFTER_HEADER = "x-acs-retry-after"  # milliseconds
STANDARD_RETRY_AFTER_HEADER = "retry-after"  # seconds, or an HTTP date
_SNIPPET_CHARS = 200
#: The most of a server's error code, message or request ID an error repeats.
MAX_SERVER_TEXT_CHARS = 300
# What a model raises for data that is not the API's shape.
_MALFORMED = (KeyError, TypeError, ValueError)


@dataclass(frozen=True)
class Envelope:
    """A successful business envelope: ``data`` and, for list operations, its page."""

    request_id: str | None
    data: Any
    page_index: int | None = None
    page_size: int | None = None
    total_size: int | None = None


def parse_envelope(
    *, status: int, headers: Mapping[str, str], body: bytes, action: str, secrets: Collection[str] = ()
) -> Envelope:
    """The envelope of a successful call; raise VVPApiError for every kind of failure.

    ``success`` is the truth: HTTP 200 with ``success: false`` is an error. ``headers`` must
    look names up case-insensitively (requests' and httpx's headers do). The server's texts in an
    error are strings (else ``InvalidResponse``), cut to :data:`MAX_SERVER_TEXT_CHARS`.

    :param secrets: values the server may echo that no error may repeat (the AccessKey secret, the STS
        token); they, and any Authorization header part, are cut out of the server's texts.
    """
    retry_after = retry_after_seconds(headers)

    def error(code: str, message: str, request_id: str | None, http_status: int = status) -> VVPApiError:
        return VVPApiError(
            code=code,
            message=message,
            request_id=request_id,
            http_status=http_status,
            action=action,
            retry_after=retry_after,
        )

    def server_texts(document: Mapping[str, Any], *keys: str) -> list[str | None]:
        """The server's texts under ``keys``, redacted and cut; InvalidResponse for one that is not a string."""
        texts: list[str | None] = []
        for key in keys:
            value = document.get(key)
            if value is not None and not isinstance(value, str):
                raise error(
                    INVALID_RESPONSE,
                    f"the error answer's {key} must be a string, got {type(value).__name__}",
                    None,
                )
            texts.append(None if value is None else _clip(redact(value, secrets)))
        return texts

    try:
        # NaN and Infinity are not JSON; a nesting too deep for the parser is not the API's either.
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        raise error(_fallback_code(status), f"the response is not the API's JSON: {_snippet(body, secrets)!r}", None)

    if "success" not in document and "Code" in document:  # the gateway's error shape
        code, message, gateway_request_id = server_texts(document, "Code", "Message", "RequestId")
        raise error(code or _fallback_code(status), message or "", gateway_request_id)

    if document.get("success") is True:
        sent_id = document.get("requestId")
        request_id = _clip(redact(sent_id, secrets)) if isinstance(sent_id, str) else None
        try:
            _optional_text(document, "requestId")
            return Envelope(
                request_id=request_id,
                data=document.get("data"),
                page_index=_page_field(document, "pageIndex"),
                page_size=_page_field(document, "pageSize"),
                total_size=_page_field(document, "totalSize"),
            )
        except (TypeError, ValueError) as exc:
            raise error(INVALID_RESPONSE, f"the response's envelope cannot be read ({exc})", request_id) from None
    if "success" not in document:
        raise error(_fallback_code(status), f"the response has no 'success' field: {_snippet(body, secrets)!r}", None)
    code, message, request_id = server_texts(document, "errorCode", "errorMessage", "requestId")
    http_code = document.get("httpCode")
    raise error(
        _unquote(code) or _fallback_code(status),
        _unquote(message) or "the service gave no error message",
        request_id,
        # A 5xx stays a 5xx (retried, and maybe run) whatever code the envelope claims.
        http_code if type(http_code) is int and 100 <= http_code <= 599 and status < 500 else status,
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list operation."""

    items: list[T]
    page_index: int
    page_size: int
    total_size: int


def items_of(model: Callable[[Mapping[str, Any]], T]) -> Callable[[Envelope, str], list[T]]:
    """A parser of a list ``data`` into models."""

    def parse(envelope: Envelope, action: str) -> list[T]:
        return _read(envelope, action, lambda: _models(model, envelope.data))

    return parse


def item_of(
    model: Callable[[Mapping[str, Any]], T], *, describe: Callable[[Any], str] = describe_value
) -> Callable[[Envelope, str], T]:
    """A parser of an object ``data`` into a model.

    :param describe: how a ``data`` that is no object is shown in the error (``describe_type`` where it may
        hold a secret).
    """

    def parse(envelope: Envelope, action: str) -> T:
        return _read(envelope, action, lambda: model(_object(envelope.data, describe)))

    return parse


def page_of(model: Callable[[Mapping[str, Any]], T]) -> Callable[[Envelope, str], Page[T]]:
    """A parser of a list ``data`` and its paging fields into a :class:`Page`."""
    items = items_of(model)

    def parse(envelope: Envelope, action: str) -> Page[T]:
        listed = items(envelope, action)
        return _read(
            envelope,
            action,
            lambda: Page(
                items=listed,
                page_index=envelope.page_index or 1,
                page_size=envelope.page_size or len(listed),
                total_size=envelope.total_size if envelope.total_size is not None else len(listed),
            ),
        )

    return parse


def _read(envelope: Envelope, action: str, read: Callable[[], T]) -> T:
    """``read()``, with a malformed ``data`` reported as VVPApiError ``InvalidResponse`` and its requestId."""
    try:
        return read()
    except _MALFORMED as exc:
        raise VVPApiError(
            code=INVALID_RESPONSE,
            message=f"the response's data cannot be read ({exc})",
            request_id=envelope.request_id,
            http_status=200,
            action=action,
        ) from exc


def _models(model: Callable[[Mapping[str, Any]], T], data: Any) -> list[T]:
    models = []
    for index, element in enumerate(_list(data)):
        try:
            models.append(model(element))
        except _MALFORMED as exc:
            raise ValueError(f"data[{index}]: {exc}") from exc
    return models


def _list(data: Any) -> list[Any]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise TypeError(f"data must be a list, got {describe_value(data)}")
    return data


def _object(data: Any, describe: Callable[[Any], str] = describe_value) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be an object, got {describe(data)}")
    return data


def _optional_text(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} must be a string, got {describe_value(value)}")
    return value


def _page_field(document: Mapping[str, Any], key: str) -> int | None:
    value = document.get(key)
    if value is not None and (type(value) is not int or not 0 <= value <= MAX_LONG):
        raise ValueError(f"{key} must be a whole number from 0 to 2^63-1, got {describe_value(value)}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait the server asked for, in seconds: ``x-acs-retry-after`` (milliseconds), else the standard
    ``Retry-After`` (seconds, or an HTTP date); None when neither is there or readable. Not capped here.

    :param now: the epoch time an HTTP date is measured from; the current time by default.
    """
    acs = _finite(headers.get(RETRY_AFTER_HEADER))
    if acs is not None:
        return max(0.0, acs / 1000)
    value = headers.get(STANDARD_RETRY_AFTER_HEADER)
    if not value:
        return None
    seconds = _finite(value)
    if seconds is None:
        try:
            date = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if date.tzinfo is None:  # an HTTP date is GMT even when it does not say so
            date = date.replace(tzinfo=datetime.UTC)
        seconds = date.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def _finite(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _unquote(value: str | None) -> str:
    # The service writes an empty code as the two-character string '""'.
    text = (value or "").strip()
    return "" if text in ('""', "''") else text


def _clip(text: str) -> str:
    if len(text) <= MAX_SERVER_TEXT_CHARS:
        return text
    return f"{text[:MAX_SERVER_TEXT_CHARS]}... ({len(text)} characters)"


def _fallback_code(status: int) -> str:
    return f"HTTP{status}" if status >= 400 else INVALID_RESPONSE


def _snippet(body: bytes, secrets: Collection[str]) -> str:
    """The body's start, its whitespace runs made single spaces, without ``secrets`` (cut out before the cut)."""
    text = " ".join(body[: _SNIPPET_CHARS * 4].decode("utf-8", "replace").split())
    return redact(text, secrets)[:_SNIPPET_CHARS]


def text_data(envelope: Envelope, action: str) -> str:
    """A parser of a ``data`` that is a string (a log); a null ``data`` is the empty string."""
    return _read(envelope, action, lambda: _text(envelope.data))


def no_data(envelope: Envelope, action: str) -> bool:
    """A parser for an operation whose success is all its answer says (a delete): True."""
    return True


def _text(data: Any) -> str:
    if data is None:
        return ""
    if not isinstance(data, str):
        raise TypeError(f"data must be a string, got {describe_value(data)}")
    return data
