"""ACS3-HMAC-SHA256 request signing, one pure function per step.

canonical request -> string to sign -> signature -> Authorization header. Nothing here
does I/O or reads a clock: the date and nonce are inputs, so every step is testable
against the published vectors.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: only ``A-Za-z0-9-_.~`` stay, everything else (``/`` too) is %XX of UTF-8."""
    return quote(value, safe="-_.~")


def hex_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_query_string(query: Mapping[str, str]) -> str:
    """Parameters sorted by name, each ``name=value`` percent-encoded, joined with ``&``."""
    return "&".join(f"{percent_encode(name)}={percent_encode(query[name])}" for name in sorted(query))


def normalize_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names, trim values; a repeated name gets its values sorted and joined with ``,``."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name.strip().lower(), []).append(value.strip())
    return {name: ",".join(sorted(values)) for name, values in grouped.items()}


def is_signed_by_default(name: str) -> bool:
    """The headers a client must sign: ``host``, ``content-type`` and every ``x-acs-*``."""
    return name in ("host", "content-type") or name.startswith("x-acs-")


def select_signed_headers(normalized: Mapping[str, str], names: Iterable[str] | None = None) -> dict[str, str]:
    """The headers to sign, sorted by name: ``names`` when given (a verifier), else the default set."""
    wanted = sorted(names) if names is not None else sorted(n for n in normalized if is_signed_by_default(n))
    return {name: normalized.get(name, "") for name in wanted}


def canonical_request(
    method: str,
    canonical_uri: str,
    query: Mapping[str, str],
    signed_headers: Mapping[str, str],
    payload_hash: str,
) -> str:
    header_block = "".join(f"{name}:{signed_headers[name]}\n" for name in sorted(signed_headers))
    return "\n".join(
        [
            method.upper(),
            canonical_uri or "/",
            canonical_query_string(query),
            header_block,
            signed_header_list(signed_headers),
            payload_hash,
        ]
    )


def signed_header_list(signed_headers: Mapping[str, str]) -> str:
    return ";".join(sorted(signed_headers))


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hex_sha256(canonical.encode('utf-8'))}"


def signature(access_key_secret: str, to_sign: str) -> str:
    return hmac.new(access_key_secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization_header(access_key_id: str, signed_headers: Mapping[str, str], sig: str) -> str:
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_header_list(signed_headers)},Signature={sig}"


def sign(
    *,
    method: str,
    canonical_uri: str,
    query: Mapping[str, str],
    headers: Iterable[tuple[str, str]],
    payload_hash: str,
    access_key_id: str,
    access_key_secret: str,
) -> str:
    """The ``Authorization`` value for a request whose default headers are signed."""
    signed = select_signed_headers(normalize_headers(headers))
    canonical = canonical_request(method, canonical_uri, query, signed, payload_hash)
    return authorization_header(access_key_id, signed, signature(access_key_secret, string_to_sign(canonical)))


def parse_authorization(value: str) -> tuple[str, list[str], str]:
    """Split an ``Authorization`` header into (AccessKey ID, signed header names, signature).

    Raises ValueError naming what is missing, for a verifier to answer ``IncompleteSignature``.
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError(f"algorithm must be {ALGORITHM}, got {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    missing = [key for key in ("Credential", "SignedHeaders", "Signature") if not fields.get(key)]
    if missing:
        raise ValueError(f"Authorization lacks {', '.join(missing)}")
    return fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]
