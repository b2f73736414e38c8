"""The emulator's HTTP front: faults, signature check, routing, and the API's JSON shapes.

:class:`VVPApplication` turns a :class:`Request` into a :class:`Response` (or None: drop the
connection) without touching sockets; :class:`VVPHTTPServer` carries it over HTTP/1.1 with
keep-alive. All the emulator's knowledge lives in :mod:`.state`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from airflow_provider_flink_vvp.api.operations import LINEAGE_PATH, MAX_PAGE_SIZE, NAMESPACES_PATH
from airflow_provider_flink_vvp.testing.auth import AuthError, SignatureVerifier
from airflow_provider_flink_vvp.testing.faults import DELIVERY_KINDS, Fault, FaultInjector, FaultKind
from airflow_provider_flink_vvp.testing.state import (
    ConflictError,
    EmulatorState,
    InvalidArgumentError,
    NotFoundError,
    Page,
    StateError,
)

MAX_BODY_BYTES = 1 << 20
# Connections the kernel holds for accept(): a burst of hundreds of clients connects at once
# (ThreadingHTTPServer's 5 would drop the rest's SYNs, each retried a second or more later).
LISTEN_BACKLOG = 1024
# Seconds a connection may stay silent (before a request, or within one) before it is closed.
DEFAULT_IDLE_TIMEOUT = 30.0
DEFAULT_PAGE_SIZE = 10
# Where the admin API lives when the emulator serves it (never on the real service's paths).
ADMIN_PREFIX = "/_emulator"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
# The service writes the empty errorCode and errorMessage of a success as the string '""'.
_EMPTY_FIELD = '""'
_STATE_ERROR_STATUS: dict[type[StateError], int] = {NotFoundError: 404, InvalidArgumentError: 400, ConflictError: 409}
_GATEWAY_FAULTS: dict[FaultKind, tuple[int, str, str]] = {
    FaultKind.THROTTLE: (400, "Throttling.User", "Request was denied due to user flow control."),
    FaultKind.UNAVAILABLE: (
        503,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
    ),
    FaultKind.INTERNAL_ERROR: (500, "InternalError", "The request processing has failed due to some unknown error."),
}
_HTML_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Request:
    """A received request: the path and query exactly as sent (still percent-encoded)."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, its name matched case-insensitively."""
        return next((value for key, value in self.headers if key.lower() == name), None)


@dataclass(frozen=True)
class Response:
    """An answer; ``delivery`` is a fault that spoils how it goes on the wire."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delivery: Fault | None = None


class GatewayError(Exception):
    """An error the API gateway answers in its own shape, before the service sees the request."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Call:
    """What an operation needs from its request."""

    state: EmulatorState
    workspace: str
    namespace: str
    params: dict[str, str]
    query: dict[str, str]
    body: bytes

    def json_body(self) -> dict[str, Any]:
        try:
            document = json.loads(self.body)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise InvalidArgumentError("InvalidParameter", f"the body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise InvalidArgumentError("InvalidParameter", "the body must be a JSON object")
        return document

    def flag(self, name: str) -> bool:
        value = self.query.get(name, "false").lower()
        if value not in ("true", "false"):
            raise InvalidArgumentError("InvalidParameter", f"{name} must be true or false, got {value!r}")
        return value == "true"

    def page(self) -> tuple[int, int]:
        index, size = (
            self.query.get(name, str(default)) for name, default in (("pageIndex", 1), ("pageSize", DEFAULT_PAGE_SIZE))
        )
        if not (index.isdigit() and size.isdigit() and int(index) >= 1 and 1 <= int(size) <= MAX_PAGE_SIZE):
            raise InvalidArgumentError(
                "InvalidParameter",
                f"pageIndex must be 1 or more and pageSize 1 to {MAX_PAGE_SIZE}, got {index}, {size}",
            )
        return int(index), int(size)


Operation = Callable[[Call], Any]  # returns the envelope's data, or a Page for list operations


def _get_deployments_by_name(call: Call) -> Any:
    return call.state.deployments_by_name(
        call.workspace,
        call.namespace,
        call.params["deploymentName"],
        job_summary=not call.flag("ignoreJobSummary"),
        resource_settings=not call.flag("ignoreResourceSetting"),
    )


def _get_deployment(call: Call) -> Any:
    return call.state.deployment(call.workspace, call.namespace, call.params["deploymentId"])


def _list_deployments(call: Call) -> Any:
    index, size = call.page()
    return call.state.list_deployments(
        call.workspace,
        call.namespace,
        page_index=index,
        page_size=size,
        name=call.query.get("name"),
        execution_mode=call.query.get("executionMode"),
        status=call.query.get("status"),
    )


def _start_job(call: Call) -> Any:
    body = call.json_body()
    deployment_id, strategy, variables = (body.get(k) for k in ("deploymentId", "restoreStrategy", "localVariables"))
    if not isinstance(deployment_id, str) or not deployment_id:
        raise InvalidArgumentError("InvalidParameter", "the body needs a deploymentId")
    if not isinstance(strategy, dict | None) or not isinstance(variables, list | None):
        raise InvalidArgumentError("InvalidParameter", "restoreStrategy must be an object, localVariables a list")
    return call.state.start_job(
        call.workspace, call.namespace, deployment_id, restore_strategy=strategy, local_variables=variables or []
    )


def _stop_job(call: Call) -> Any:
    strategy = call.json_body().get("stopStrategy")
    if not isinstance(strategy, str):
        raise InvalidArgumentError("InvalidParameter", "the body needs a stopStrategy")
    return call.state.stop_job(call.workspace, call.namespace, call.params["jobId"], stop_strategy=strategy)


def _get_job(call: Call) -> Any:
    return call.state.job(call.workspace, call.namespace, call.params["jobId"])


def _list_jobs(call: Call) -> Any:
    deployment_id = call.query.get("deploymentId")
    if not deployment_id:
        raise InvalidArgumentError("InvalidParameter", "ListJobs needs the deploymentId query parameter")
    order = call.query.get("sortOrder", "desc").lower()
    if order not in ("asc", "desc"):
        raise InvalidArgumentError("InvalidParameter", f"sortOrder must be asc or desc, got {order!r}")
    index, size = call.page()
    return call.state.list_jobs(
        call.workspace, call.namespace, deployment_id, page_index=index, page_size=size, newest_first=order == "desc"
    )


def _update_deployment(call: Call) -> Any:
    return call.state.update_deployment(call.workspace, call.namespace, call.params["deploymentId"], call.json_body())


def _create_savepoint(call: Call) -> Any:
    body = call.json_body()
    deployment_id, native_format, description = (body.get(k) for k in ("deploymentId", "nativeFormat", "description"))
    if not isinstance(deployment_id, str) or not deployment_id:
        raise InvalidArgumentError("InvalidParameter", "the body needs a deploymentId")
    if not isinstance(native_format, bool | None) or not isinstance(description, str | None):
        raise InvalidArgumentError("InvalidParameter", "nativeFormat must be a boolean, description a string")
    return call.state.create_savepoint(
        call.workspace, call.namespace, deployment_id, native_format=bool(native_format), description=description
    )


def _get_savepoint(call: Call) -> Any:
    return call.state.savepoint(call.workspace, call.namespace, call.params["savepointId"])


def _list_savepoints(call: Call) -> Any:
    deployment_id = call.query.get("deploymentId")
    if not deployment_id:
        raise InvalidArgumentError("InvalidParameter", "ListSavepoints needs the deploymentId query parameter")
    index, size = call.page()
    return call.state.list_savepoints(
        call.workspace, call.namespace, deployment_id, job_id=call.query.get("jobId"), page_index=index, page_size=size
    )


def _delete_savepoint(call: Call) -> Any:
    return call.state.delete_savepoint(call.workspace, call.namespace, call.params["savepointId"])


def _get_job_diagnosis(call: Call) -> Any:
    return call.state.job_diagnosis(call.workspace, call.namespace, call.params["deploymentId"], call.params["jobId"])


def _get_latest_job_start_log(call: Call) -> Any:
    return call.state.latest_job_start_log(call.workspace, call.namespace, call.params["deploymentId"])


def _get_events(call: Call) -> Any:
    deployment_id = call.query.get("deploymentId")
    if not deployment_id:
        raise InvalidArgumentError("InvalidParameter", "GetEvents needs the deploymentId query parameter")
    index, size = call.page()
    return call.state.events(call.workspace, call.namespace, deployment_id, page_index=index, page_size=size)


def _get_lineage_info(call: Call) -> Any:
    """GetLineageInfo names its deployment and namespace in the body, not the path."""
    body = call.json_body()
    if body.get("idType", "JOB") != "JOB":
        raise InvalidArgumentError("InvalidParameter", f"the emulator answers idType JOB only, got {body['idType']!r}")
    if body.get("workspace", call.workspace) != call.workspace:
        raise InvalidArgumentError("InvalidParameter", "the body's workspace is not the workspace header's")
    deployment_id, namespace = body.get("id"), body.get("namespace")
    if not (isinstance(deployment_id, str) and deployment_id and isinstance(namespace, str) and namespace):
        raise InvalidArgumentError("MissingParameter", "GetLineageInfo needs the body's id and namespace")
    return call.state.lineage_info(call.workspace, namespace, deployment_id)


@dataclass(frozen=True)
class Route:
    """``pattern`` is the path after the namespace; ``{name}`` captures a segment, less an optional literal suffix."""

    method: str
    pattern: str
    action: str
    operation: Operation

    def match(self, method: str, segments: list[str]) -> dict[str, str] | None:
        parts = self.pattern.split("/")
        if method != self.method or len(parts) != len(segments):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                name, _, suffix = part[1:].partition("}")
                value = segment.removesuffix(suffix)
                if not value or not segment.endswith(suffix):
                    return None
                params[name] = value
            elif part != segment:
                return None
        return params


ROUTES = (
    Route("GET", "deployments/name/{deploymentName}", "GetDeploymentsByName", _get_deployments_by_name),
    Route("GET", "deployments/{deploymentId}", "GetDeployment", _get_deployment),
    Route("GET", "deployments", "ListDeployments", _list_deployments),
    Route("POST", "jobs:start", "StartJobWithParams", _start_job),
    Route("POST", "jobs/{jobId}:stop", "StopJob", _stop_job),
    Route("GET", "jobs/{jobId}", "GetJob", _get_job),
    Route("GET", "jobs", "ListJobs", _list_jobs),
    Route("POST", "savepoints", "CreateSavepoint", _create_savepoint),
    Route("GET", "savepoints/{savepointId}", "GetSavepoint", _get_savepoint),
    Route("GET", "savepoints", "ListSavepoints", _list_savepoints),
    Route("DELETE", "savepoints/{savepointId}", "DeleteSavepoint", _delete_savepoint),
    Route("GET", "deployments/{deploymentId}/jobs/{jobId}/job-diagnoses/lite", "GetJobDiagnosis", _get_job_diagnosis),
    Route(
        "GET",
        "deployments/{deploymentId}/latest_jobmanager_start_log",
        "GetLatestJobStartLog",
        _get_latest_job_start_log,
    ),
    Route("GET", "events", "GetEvents", _get_events),
    Route("PUT", "deployments/{deploymentId}", "UpdateDeployment", _update_deployment),
)


#: Outside every namespace's path: GetLineageInfo's namespace is in its body.
LINEAGE_ROUTE = Route("POST", "", "GetLineageInfo", _get_lineage_info)


class VVPApplication:
    """Answers requests from an :class:`~.testing.state.EmulatorState`, after faults and the signature check.

    Every request is counted under its ``x-acs-action`` header ("" when absent), and by the second of
    the state's clock it arrived in. With ``admin``, unsigned requests under ``ADMIN_PREFIX`` drive
    the emulator from another process (see ``_admin``); they meet no fault and are not counted.
    """

    def __init__(self, state: EmulatorState, faults: FaultInjector | None = None, *, admin: bool = False) -> None:
        self.state = state
        self.faults = faults or FaultInjector()
        self.admin = admin
        self._verifier = SignatureVerifier(state.secret_of, state.clock.now, state.security_token_problem)
        self._counts: Counter[str] = Counter()
        self._per_second: Counter[int] = Counter()
        self._count_lock = threading.Lock()

    def request_counts(self) -> dict[str, int]:
        """How many requests arrived, by ``x-acs-action``."""
        with self._count_lock:
            return dict(self._counts)

    def requests_per_second(self) -> dict[int, int]:
        """How many requests arrived in each second (epoch seconds of the state's clock) that had any."""
        with self._count_lock:
            return dict(self._per_second)

    def handle(self, request: Request) -> Response | None:
        """The answer to ``request``, or None when a fault drops the connection."""
        request_id = _request_id()
        if self.admin and request.raw_path.startswith(ADMIN_PREFIX):
            return _admin(self, request, request_id)
        action = self._count(request.header("x-acs-action"))
        delivery: Fault | None = None
        for fault in self.faults.faults_for(action):
            if fault.kind is FaultKind.LATENCY:
                time.sleep(fault.latency_ms / 1000)
            elif fault.kind is FaultKind.DROP:
                return None
            elif fault.kind in DELIVERY_KINDS:
                delivery = fault
            else:
                return _fault_response(fault, request_id)
        response = self._served(request, request_id)
        return response if delivery is None else replace(response, delivery=delivery)

    def _served(self, request: Request, request_id: str) -> Response:
        try:
            return self._answer(request, request_id)
        except GatewayError as exc:
            return _gateway_response(exc, request_id)
        except StateError as exc:
            return _business_response(request_id, _STATE_ERROR_STATUS.get(type(exc), 400), error=exc)
        except Exception as exc:  # the emulator keeps serving whatever a request does to it
            return _gateway_response(GatewayError(500, "InternalError", f"the emulator failed: {exc!r}"), request_id)

    def refuse(self, action: str | None, error: GatewayError) -> Response:
        """Count a request that cannot be read (a bad body length) and answer it with ``error``."""
        self._count(action)
        return _gateway_response(error, _request_id())

    def _count(self, action: str | None) -> str:
        second = int(self.state.clock.now())
        with self._count_lock:
            self._counts[action or ""] += 1
            self._per_second[second] += 1
        return action or ""

    def _answer(self, request: Request, request_id: str) -> Response:
        query = _parse_query(request.raw_query)
        try:
            self._verifier.verify(
                method=request.method,
                raw_path=request.raw_path,
                query=query,
                headers=request.headers,
                body=request.body,
            )
        except AuthError as exc:
            raise GatewayError(exc.status, exc.code, exc.message) from None
        route, namespace, params = _route(request.method, request.raw_path)
        action = request.header("x-acs-action")
        if action != route.action:
            raise GatewayError(
                400, "InvalidAction.Mismatch", f"x-acs-action {action!r} does not name this path's {route.action}"
            )
        workspace = request.header("workspace")
        if not workspace:
            raise InvalidArgumentError("MissingParameter", "the workspace header is required")
        data = route.operation(Call(self.state, workspace, namespace, params, query, request.body))
        return _business_response(request_id, 200, data=data)


def _admin(application: VVPApplication, request: Request, request_id: str) -> Response:
    """The admin API, for a test that runs the emulator in another process:

    - ``GET /_emulator/jobs``: every job, with ``statusSince`` (epoch ms);
    - ``POST /_emulator/jobs/{jobId}/timeline`` ``{"timeline": [[state, seconds or null], ...]}``: the job
      follows it from now on;
    - ``POST /_emulator/faults`` ``{"throttle": 0.3, ...}``: the share of requests failing each way (none
      given: none fail);
    - ``POST /_emulator/queue`` ``{"faults": [{"kind": "drip", "action": "StartJobWithParams", "latency_ms": 5}]}``:
      the next requests (of that action) meet these faults, in order;
    - ``GET /_emulator/requests``: ``counts`` by action and ``perSecond`` (epoch second: requests).
    """
    state = application.state
    path = request.raw_path.removeprefix(ADMIN_PREFIX)
    try:
        if (request.method, path) == ("GET", "/jobs"):
            return _json_response(200, {"jobs": state.all_jobs()}, request_id)
        if (request.method, path) == ("GET", "/requests"):
            per_second = {str(second): count for second, count in application.requests_per_second().items()}
            return _json_response(200, {"counts": application.request_counts(), "perSecond": per_second}, request_id)
        body = Call(state, "", "", {}, {}, request.body).json_body() if request.method == "POST" else {}
        if (request.method, path) == ("POST", "/faults"):
            rates = {FaultKind(kind): rate for kind, rate in body.items()}
            application.faults.set_rates(rates)
            return _json_response(200, {"rates": {kind.value: rate for kind, rate in rates.items()}}, request_id)
        if (request.method, path) == ("POST", "/queue"):
            queued = [_queued_fault(fault) for fault in body.get("faults", [])]
            application.faults.enqueue(*queued)
            return _json_response(200, {"pending": len(application.faults.pending())}, request_id)
        job_id = path.removeprefix("/jobs/").removesuffix("/timeline")
        if request.method == "POST" and path == f"/jobs/{job_id}/timeline" and "/" not in job_id:
            return _json_response(200, state.set_job_timeline(unquote(job_id), body.get("timeline", [])), request_id)
    except NotFoundError as exc:
        return _json_response(404, {"error": exc.message}, request_id)
    except (StateError, ValueError) as exc:
        return _json_response(400, {"error": str(exc)}, request_id)
    return _json_response(404, {"error": f"no admin operation answers {request.method} {request.raw_path}"}, request_id)


def _queued_fault(document: Any) -> Fault:
    """A :class:`Fault` from its JSON: ``kind``, and optionally ``action``, ``latency_ms``, ``retry_after_ms``."""
    if not isinstance(document, dict) or not set(document) <= {"kind", "action", "latency_ms", "retry_after_ms"}:
        raise ValueError(f"a queued fault is an object of kind, action, latency_ms, retry_after_ms; got {document!r}")
    return Fault(**{**document, "kind": FaultKind(str(document.get("kind")))})


def _route(method: str, raw_path: str) -> tuple[Route, str, dict[str, str]]:
    """The route, namespace and path parameters; each segment is decoded once, after splitting on '/'."""
    try:
        segments = [unquote(segment, errors="strict") for segment in raw_path.split("/")]
    except UnicodeDecodeError:
        raise GatewayError(400, "InvalidParameter", "the path is not percent-encoded UTF-8") from None
    if (method, raw_path) == (LINEAGE_ROUTE.method, LINEAGE_PATH):
        return LINEAGE_ROUTE, "", {}
    prefix = NAMESPACES_PATH.split("/")
    namespace_at = len(prefix)
    if segments[:namespace_at] == prefix and len(segments) > namespace_at + 1 and segments[namespace_at]:
        for route in ROUTES:
            params = route.match(method, segments[namespace_at + 1 :])
            if params is not None:
                return route, segments[namespace_at], params
    raise GatewayError(404, "InvalidAction.NotFound", f"no API answers {method} {raw_path}")


def _parse_query(raw_query: str) -> dict[str, str]:
    """The query as sent: '+' stays '+' (the signer encodes a space as %20); the last of a repeated name wins."""
    try:
        return {
            unquote(name, errors="strict"): unquote(value, errors="strict")
            for name, _, value in (part.partition("=") for part in raw_query.split("&") if part)
        }
    except UnicodeDecodeError:
        raise GatewayError(400, "InvalidParameter", "the query is not percent-encoded UTF-8") from None


def _business_response(request_id: str, status: int, *, data: Any = None, error: StateError | None = None) -> Response:
    """The service's envelope; a Page adds pageIndex, pageSize and totalSize."""
    envelope: dict[str, Any] = {
        "requestId": request_id,
        "success": error is None,
        "httpCode": status,
        "errorCode": error.code if error else _EMPTY_FIELD,
        "errorMessage": error.message if error else _EMPTY_FIELD,
        "data": data.items if isinstance(data, Page) else data,
    }
    if isinstance(data, Page):
        envelope.update(pageIndex=data.index, pageSize=data.size, totalSize=data.total)
    return _json_response(status, envelope, request_id)


def _gateway_response(error: GatewayError, request_id: str) -> Response:
    """The gateway's error shape."""
    document = {
        "RequestId": request_id,
        "HostId": "ververica.emulator.local",
        "Code": error.code,
        "Message": error.message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}&product=ververica",
    }
    return _json_response(error.status, document, request_id, error.headers)


def _fault_response(fault: Fault, request_id: str) -> Response:
    if fault.kind is FaultKind.HTML:
        return Response(502, _HTML_PAGE, {"content-type": "text/html"})
    if fault.kind is FaultKind.TOO_MANY_REQUESTS:
        # Fractional seconds, so that tests stay quick; real servers send whole ones.
        retry_after = f"{fault.retry_after_ms / 1000:g}"
        return Response(429, b"Too Many Requests", {"content-type": "text/plain", "retry-after": retry_after})
    status, code, message = _GATEWAY_FAULTS[fault.kind]
    headers = {"x-acs-retry-after": str(fault.retry_after_ms)} if fault.kind is FaultKind.THROTTLE else {}
    return _gateway_response(GatewayError(status, code, message, headers), request_id)


def _json_response(
    status: int, document: Mapping[str, Any], request_id: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return Response(
        status, body, {"content-type": JSON_CONTENT_TYPE, "x-acs-request-id": request_id, **(headers or {})}
    )


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


class VVPHTTPServer(ThreadingHTTPServer):
    """HTTP/1.1 with keep-alive, one daemon thread per connection; quiet unless ``verbose``.

    :param idle_timeout: seconds a connection may send nothing before it is closed, so a silent
        client does not hold a thread forever.
    """

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        application: VVPApplication,
        *,
        verbose: bool = False,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        if not 0 < idle_timeout < float("inf"):
            raise ValueError(f"idle_timeout must be a finite number of seconds above 0, got {idle_timeout!r}")
        self.application = application
        self.verbose = verbose
        self.idle_timeout = idle_timeout
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def server_close(self) -> None:
        """Stop listening and end the open keep-alive connections, so no thread serves on after."""
        super().server_close()
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # the peer closed it already
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets its connection is routine for a test server: say so only when asked.
        if self.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VVPEmulator"
    wbufsize = 1 << 16  # headers and body leave in one write; handle_one_request flushes
    server: VVPHTTPServer

    def setup(self) -> None:
        # Without TCP_NODELAY, Nagle and delayed ACK stall each keep-alive response by about 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.request, True)
        self.request.settimeout(self.server.idle_timeout)  # a read waiting longer raises TimeoutError: closed
        super().setup()

    def finish(self) -> None:
        self.server.track(self.request, False)
        super().finish()

    def _serve(self) -> None:
        response = self._respond(self.server.application)
        if response is None:
            self.close_connection = True
            return
        body, kind = response.body, response.delivery.kind if response.delivery else None
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if kind is FaultKind.BAD_GZIP:
            body = b"\x1f\x8b\x08\x00 not gzip at all " + body
            self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(body) + (100 if kind is FaultKind.SHORT_BODY else 0)))
        self.end_headers()
        if response.delivery is None or kind is FaultKind.BAD_GZIP:
            self.wfile.write(body)
            return
        self.close_connection = True
        self._deliver_badly(body, response.delivery)

    def _deliver_badly(self, body: bytes, fault: Fault) -> None:
        if fault.kind is FaultKind.DRIP:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep((fault.latency_ms or 100) / 1000)
        elif fault.kind is FaultKind.RESET:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            # Linger 0: closing sends a TCP reset instead of an orderly end.
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.request.close()
        else:  # SHORT_BODY: the whole body, though the Content-Length promised more
            self.wfile.write(body)

    def _respond(self, application: VVPApplication) -> Response | None:
        action = self.headers.get("x-acs-action")
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.close_connection = True
            return application.refuse(action, GatewayError(411, "MissingContentLength", "send a content-length"))
        length = self.headers.get("content-length", "0").strip()
        if not (length.isascii() and length.isdigit()):
            # The next request's start is unknown: answer and close.
            self.close_connection = True
            return application.refuse(
                action, GatewayError(400, "InvalidParameter", f"content-length must be a number, got {length!r}")
            )
        if len(length) > len(str(MAX_BODY_BYTES)) or int(length) > MAX_BODY_BYTES:
            # Not read: answer and close.
            self.close_connection = True
            return application.refuse(
                action,
                GatewayError(413, "RequestEntityTooLarge", f"the body may hold at most {MAX_BODY_BYTES} bytes"),
            )
        body = self.rfile.read(int(length))
        raw_path, _, raw_query = self.path.partition("?")
        request = Request(self.command, raw_path, raw_query, list(self.headers.items()), body)
        return application.handle(request)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")
