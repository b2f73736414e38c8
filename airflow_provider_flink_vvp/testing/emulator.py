"""Command line: ``python -m airflow_provider_flink_vvp.testing.emulator --port 0 --state state.json``.

The first line on stdout is the URL it listens on; it serves until SIGINT or SIGTERM and exits 0,
after writing its state to ``--save-state`` (when given): started again on the same port with that
file as ``--state``, it goes on as an API back from an outage.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_flink_vvp.api.operations import Credentials
from airflow_provider_flink_vvp.testing.faults import DEFAULT_RETRY_AFTER_MS, FaultInjector, FaultKind
from airflow_provider_flink_vvp.testing.harness import VVPEmulator
from airflow_provider_flink_vvp.testing.server import DEFAULT_IDLE_TIMEOUT
from airflow_provider_flink_vvp.testing.state import DEPLOYMENT_ORDERS, EmulatorState, JobDurations, StateError

_RATE_FLAGS = {
    FaultKind.THROTTLE: "--throttle-rate",
    FaultKind.UNAVAILABLE: "--unavailable-rate",
    FaultKind.INTERNAL_ERROR: "--internal-error-rate",
    FaultKind.DROP: "--drop-rate",
    FaultKind.HTML: "--html-rate",
}


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        durations = JobDurations(
            starting=options.starting_seconds,
            batch_running=options.batch_running_seconds,
            cancelling=options.cancelling_seconds,
            savepoint=options.savepoint_seconds,
        )
        state = (
            _load_state(options.state, durations, options.deployment_order)
            if options.state
            else EmulatorState(job_durations=durations, deployment_order=options.deployment_order or "newest_first")
        )
        for pair in options.access_key:
            key_id, _, secret = pair.partition(":")
            if not (key_id and secret):
                raise ValueError(
                    f"--access-key takes ID:SECRET, got {key_id!r} and a secret of {len(secret)} characters"
                )
            Credentials(key_id, secret)  # what no client could send is refused here, not on every request
            state.add_access_key(key_id, secret)
        faults = FaultInjector(
            rates={kind: getattr(options, _rate_dest(kind)) for kind in _RATE_FLAGS},
            latency_ms=options.latency_ms,
            latency_rate=options.latency_rate,
            retry_after_ms=options.retry_after_ms,
            seed=options.seed,
        )
    except (OSError, ValueError, StateError) as exc:
        # One line whatever the cause: a message may quote a value with a newline in it.
        print(" ".join(f"cannot start the emulator: {exc}".split()), file=sys.stderr)
        return 2

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    emulator = VVPEmulator(
        state,
        host=options.host,
        port=options.port,
        faults=faults,
        verbose=options.verbose,
        idle_timeout=options.idle_timeout,
        admin=options.admin,
    )
    try:
        emulator.start()
    except OSError as exc:
        print(f"cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 2
    try:
        print(emulator.url, flush=True)
        stopping.wait()
    finally:
        emulator.stop()
    if options.save_state:
        try:
            _save_state(state, options.save_state)
        except OSError as exc:
            print(f"cannot save the state to {options.save_state}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0


def _save_state(state: EmulatorState, path: str) -> None:
    """Write the state file whole or not at all: a reader never sees half of it."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(state.to_document(), file, indent=1)
    os.replace(partial, path)


def _load_state(path: str, durations: JobDurations, deployment_order: str | None) -> EmulatorState:
    """The state file at ``path``; every way it can be unreadable or malformed is a ValueError naming it."""
    try:
        return EmulatorState.from_file(path, job_durations=durations, deployment_order=deployment_order)
    except StateError as exc:
        problem = exc.message
    except OSError as exc:
        problem = exc.strerror or str(exc)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        problem = f"not JSON ({exc})"
    except RecursionError:
        problem = "not JSON this emulator can read (nested too deep)"
    raise ValueError(f"state file {path}: {problem}")


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {port}")
    return port


def _positive_seconds(value: str) -> float:
    seconds = float(value)
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"a number of seconds above 0, got {value}")
    return seconds


def _rate_dest(kind: FaultKind) -> str:
    return f"{kind.value}_rate"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_flink_vvp.testing.emulator",
        description="A local emulator of the Realtime Compute for Apache Flink (VVP) OpenAPI.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8765, help="port to listen on; 0 picks a free one")
    parser.add_argument("--state", help="state file: JSON with access_keys, deployments and jobs")
    parser.add_argument(
        "--save-state", metavar="PATH", help="on SIGINT or SIGTERM, write the state here (a --state file)"
    )
    parser.add_argument(
        "--admin", action="store_true", help="serve the unsigned admin API under /_emulator (jobs, faults, requests)"
    )
    parser.add_argument(
        "--access-key", action="append", default=[], metavar="ID:SECRET", help="accept this AccessKey (repeatable)"
    )
    parser.add_argument(
        "--deployment-order",
        choices=DEPLOYMENT_ORDERS,
        help="order of listed deployments by createdAt (default: the state file's, else newest_first)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_positive_seconds,
        default=DEFAULT_IDLE_TIMEOUT,
        help=f"seconds a connection may stay silent before it is closed (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    faults = parser.add_argument_group("faults", "share of requests (0 to 1) that fail each way")
    for kind, flag in _RATE_FLAGS.items():
        faults.add_argument(
            flag, dest=_rate_dest(kind), type=float, default=0.0, metavar="RATE", help=f"{kind.value} faults"
        )
    faults.add_argument("--latency-ms", type=int, default=0, help="delay added to requests, in milliseconds")
    faults.add_argument("--latency-rate", type=float, default=1.0, help="share of requests delayed (default all)")
    faults.add_argument(
        "--retry-after-ms", type=int, default=DEFAULT_RETRY_AFTER_MS, help="x-acs-retry-after of throttled requests"
    )
    faults.add_argument("--seed", type=int, help="seed of the fault draws, for repeatable runs")
    jobs = parser.add_argument_group("jobs", "seconds a started or stopped job spends in each passing state")
    jobs.add_argument("--starting-seconds", type=float, default=JobDurations.starting)
    jobs.add_argument("--batch-running-seconds", type=float, default=JobDurations.batch_running)
    jobs.add_argument("--cancelling-seconds", type=float, default=JobDurations.cancelling)
    jobs.add_argument(
        "--savepoint-seconds",
        type=float,
        default=JobDurations.savepoint,
        help="seconds a savepoint is STARTED before it is COMPLETED",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
