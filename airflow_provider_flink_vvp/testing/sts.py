"""A local stand-in for STS: AssumeRole and AssumeRoleWithOIDC on ``http://127.0.0.1:PORT``, answered as STS does.

Each issued AccessKey and token is registered with an :class:`~.state.EmulatorState`, which accepts it until
it expires: short lifetimes (seconds) make credential renewal testable over real HTTP.

    with STSStandIn(emulator.state, roles={ROLE_ARN}, lifetime=4) as sts:
        ...  # a connection with credential_type ram_role_arn and the extra sts_endpoint=sts.url

Signatures are not checked; the caller's AccessKey must be one the emulator knows, the role one of ``roles``.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_flink_vvp.testing.serving import ServedInBackground
from airflow_provider_flink_vvp.testing.state import EmulatorState

ASSUME_ROLE_ACTIONS = ("AssumeRole", "AssumeRoleWithOIDC")
_EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class STSFailure:
    """An answer the stand-in gives instead of credentials: STS's error document, or no answer for ``hang`` seconds."""

    status: int = 400
    code: str = "EntityNotExist.Role"
    message: str = "The role not exists."
    hang: float = 0.0


@dataclass(frozen=True)
class IssuedCredentials:
    access_key_id: str
    secret: str
    security_token: str
    expires_at: float
    role_arn: str
    session_name: str


class STSState:
    """What the stand-in knows and issued; nothing here speaks HTTP.

    :param emulator: the VVP emulator's state, which learns every issued AccessKey and token.
    :param roles: the role ARNs that can be assumed.
    :param lifetime: seconds an issued token lives, whatever DurationSeconds asks (STS's minimum is 900).
    """

    def __init__(self, emulator: EmulatorState, *, roles: set[str], lifetime: float) -> None:
        self.emulator = emulator
        self.roles = set(roles)
        self.lifetime = lifetime
        self.issued: list[IssuedCredentials] = []
        self.requests: list[dict[str, str]] = []
        self._failures: deque[STSFailure] = deque()
        self._always: STSFailure | None = None
        #: Seconds the stand-in takes before each answer, as a distant STS would.
        self.answer_delay = 0.0
        self._lock = threading.Lock()

    def fail(self, failure: STSFailure, *, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``failure``."""
        with self._lock:
            self._failures.extend([failure] * times)

    def fail_always(self, failure: STSFailure | None) -> None:
        """Answer every request with ``failure`` from now on (None: answer normally again)."""
        with self._lock:
            self._always = failure

    def next_failure(self) -> STSFailure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else self._always

    def assume(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """STS's answer to an AssumeRole (or AssumeRoleWithOIDC) request's parameters: HTTP status and JSON."""
        request_id = str(uuid.uuid4()).upper()
        with self._lock:
            self.requests.append(dict(query))
        action = query.get("Action")
        if action not in ASSUME_ROLE_ACTIONS:
            return _error(400, "InvalidAction.NotFound", f"Specified api {action!r} is not found", request_id)
        needed = ["RoleArn", "RoleSessionName"] + (
            ["AccessKeyId", "Signature"] if action == "AssumeRole" else ["OIDCProviderArn", "OIDCToken"]
        )
        if missing := [name for name in needed if not query.get(name)]:
            return _error(400, "MissingParameter", f"missing {', '.join(missing)}", request_id)
        if action == "AssumeRole" and self.emulator.secret_of(query["AccessKeyId"]) is None:
            return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.", request_id)
        if query["RoleArn"] not in self.roles:
            return _error(404, "EntityNotExist.Role", "The role not exists.", request_id)
        issued = self._issue(query["RoleArn"], query["RoleSessionName"])
        expiration = time.strftime(_EXPIRATION_FORMAT, time.gmtime(issued.expires_at))
        return 200, {
            "RequestId": request_id,
            "AssumedRoleUser": {
                "Arn": f"{issued.role_arn.replace(':role/', ':assumed-role/')}/{issued.session_name}",
                "AssumedRoleId": f"3{secrets.randbelow(10**17):017d}:{issued.session_name}",
            },
            "Credentials": {
                "AccessKeyId": issued.access_key_id,
                "AccessKeySecret": issued.secret,
                "SecurityToken": issued.security_token,
                "Expiration": expiration,
            },
        }

    def _issue(self, role_arn: str, session_name: str) -> IssuedCredentials:
        # Whole seconds, as STS's Expiration says: the emulator refuses the token from the second it names.
        expires_at = float(math.floor(self.emulator.clock.now() + self.lifetime))
        issued = IssuedCredentials(
            access_key_id=f"STS.{secrets.token_hex(12)}",
            secret=secrets.token_urlsafe(24),
            security_token=f"CAIS{secrets.token_urlsafe(48)}",
            expires_at=expires_at,
            role_arn=role_arn,
            session_name=session_name,
        )
        self.emulator.add_temporary_credentials(
            issued.access_key_id, issued.secret, issued.security_token, expires_at=expires_at
        )
        with self._lock:
            self.issued.append(issued)
        return issued


def _error(status: int, code: str, message: str, request_id: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "RequestId": request_id,
        "HostId": "sts.aliyuncs.com",
        "Code": code,
        "Message": message,
        "Recommend": "https://api.aliyun.com/troubleshoot?q=" + code,
    }


class STSStandIn(ServedInBackground):
    """:class:`STSState` served over HTTP on loopback while the ``with`` block runs (port 0: a free one)."""

    _what = "STS stand-in"

    def __init__(self, emulator: EmulatorState, *, roles: set[str], lifetime: float = 900.0, port: int = 0) -> None:
        self.state = STSState(emulator, roles=roles, lifetime=lifetime)
        self._port = port

    def _server(self) -> ThreadingHTTPServer:
        state = self.state

        class Handler(_Handler):
            sts = state

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        return server

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the value of a connection's extra ``sts_endpoint``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def issued(self) -> list[IssuedCredentials]:
        return list(self.state.issued)


class _Handler(BaseHTTPRequestHandler):
    sts: STSState
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        query.update(parse_qsl(body, keep_blank_values=True))
        failure = self.sts.next_failure()
        time.sleep(self.sts.answer_delay)
        if failure is not None and failure.hang:
            time.sleep(failure.hang)
            self.close_connection = True
            return
        if failure is not None:
            status, document = _error(failure.status, failure.code, failure.message, str(uuid.uuid4()).upper())
        else:
            status, document = self.sts.assume(query)
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json;charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the state, not a log."""
