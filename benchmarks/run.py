"""``make bench``: every benchmark side by side in one run, as a table of ratios and counts with targets.

.venv/bin/python benchmarks/run.py            # the issue's sizes (about 10 minutes)
.venv/bin/python benchmarks/run.py --quick    # small fleets, to check the harness
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import client_cost
import emulator_throughput
import imports
from emulator_process import exit_on_sigterm, prepare_airflow_home
from triggers import FleetConfig, FleetResult

BENCHMARKS = Path(__file__).resolve().parent
IMPORT_TARGET_MS = 30.0
EMULATOR_TARGET_PER_SECOND = 1000.0
HOOK_VS_BARE_TARGET = 1.15
LATENESS_P99_TARGET = 1.0
MEMORY_TARGET_MB = 100.0
# Requests per poll interval may exceed the deployment count by this share (a window's edges).
REQUESTS_SLACK = 1.1
FLEET_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    beside: str
    target: str
    passed: bool | None  # None: information only

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


def run_fleet_process(config: FleetConfig) -> FleetResult:
    """One fleet in a fresh process (its own memory, patches and event loop); its logs are dropped."""
    with tempfile.TemporaryDirectory(prefix="vvp-bench-fleet-") as directory:
        output = Path(directory) / "result.json"
        completed = subprocess.run(  # noqa: S603 - our own interpreter and script
            [
                sys.executable,
                str(BENCHMARKS / "triggers.py"),
                "--config",
                json.dumps(asdict(config)),
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=FLEET_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0 or not output.exists():
            raise RuntimeError(f"the fleet {config} failed:\n{completed.stderr[-3000:]}")
        return FleetResult(**json.loads(output.read_text(encoding="utf-8")))


def import_rows(result: imports.ImportResult) -> list[Row]:
    ms = 1000.0
    official = (
        f"official SDK client +{result.official_minus_sdk_cpu * ms:.0f} ms "
        f"(on top in-process {result.official_on_top_cpu * ms:.0f} ms)"
        if result.official_available
        else "official SDK client not installed"
    )
    return [
        Row(
            f"Import: operators+sensors on top of airflow.sdk (CPU, fresh interpreters, median of {result.runs})",
            f"{result.ours_on_top_cpu * ms:.1f} ms",
            f"{official}; as a difference of fresh interpreters {result.ours_minus_sdk_cpu * ms:+.0f} ms CPU, "
            f"{result.ours_minus_sdk_wall * ms:+.0f} ms wall, against airflow.sdk alone "
            f"{result.sdk_alone_cpu * ms:.0f} ms CPU whose IQR is {result.sdk_alone_cpu_spread * ms:.0f} ms",
            f"<= {IMPORT_TARGET_MS:.0f} ms",
            result.ours_on_top_cpu * ms <= IMPORT_TARGET_MS,
        ),
        Row(
            "Import: requests/httpx/tenacity/hook/client/trigger loaded by ours",
            ", ".join(result.heavy_loaded_by_ours) or "none",
            "already loaded by airflow.sdk itself: " + (", ".join(result.heavy_loaded_by_sdk) or "none"),
            "none",
            not result.heavy_loaded_by_ours,
        ),
    ]


def client_rows(result: client_cost.ClientCostResult) -> list[Row]:
    us = 1e6
    cpu = result.cpu_per_call
    vs_bare = result.ratio("hook", "bare")
    vs_official = result.ratio("hook", "official")
    rows = [
        Row(
            f"Client CPU/call: hook vs bare requests.Session signed inline ({result.rounds}x{result.calls_per_round})",
            f"{vs_bare:.2f}x",
            f"hook {cpu['hook'] * us:.0f} us, bare {cpu['bare'] * us:.0f} us, "
            f"bare pre-signed {cpu['presigned'] * us:.0f} us",
            f"<= {HOOK_VS_BARE_TARGET:.2f}x",
            vs_bare is not None and vs_bare <= HOOK_VS_BARE_TARGET,
        )
    ]
    if vs_official is None:
        rows.append(Row("Client CPU/call: hook vs official SDK", "n/a", str(result.official_error), "<= 1.00x", False))
    else:
        rows.append(
            Row(
                "Client CPU/call: hook vs official SDK (emulator accepts its ACS3 signature)",
                f"{vs_official:.2f}x",
                f"official {cpu['official'] * us:.0f} us",
                "<= 1.00x",
                vs_official <= 1.0,
            )
        )
    return rows


def _fleet_label(config: FleetConfig) -> str:
    return f"{config.triggers} triggers / {config.deployments} deployments / {config.poll_interval:g} s poll"


def fleet_rows(shared: FleetResult, unshared: FleetResult, storm: FleetResult) -> list[Row]:
    config = FleetConfig(**shared.config)
    label = _fleet_label(config)
    requests_target = config.deployments * REQUESTS_SLACK
    return [
        Row(
            f"Fleet ({label}, {shared.duration:.0f} s): right events",
            f"{shared.right_events}/{config.triggers}",
            f"unshared {unshared.right_events}/{config.triggers}; events {shared.events}; missing {shared.missing}",
            "all",
            shared.right_events == config.triggers,
        ),
        Row(
            "Fleet: poll lateness p99 (p50, max)",
            f"{shared.lateness_p99 * 1000:.0f} ms ({shared.lateness_p50 * 1000:.0f}, {shared.lateness_max * 1000:.0f})",
            f"unshared {unshared.lateness_p99 * 1000:.0f} ms ({unshared.lateness_p50 * 1000:.0f}, "
            f"{unshared.lateness_max * 1000:.0f}); {shared.polls} polls",
            f"< {LATENESS_P99_TARGET * 1000:.0f} ms",
            shared.lateness_p99 < LATENESS_P99_TARGET,
        ),
        Row(
            "Fleet: memory added by the triggers (peak RSS)",
            f"{shared.rss_added_peak_mb:.1f} MB",
            f"unshared {unshared.rss_added_peak_mb:.1f} MB",
            f"< {MEMORY_TARGET_MB:.0f} MB",
            shared.rss_added_peak_mb < MEMORY_TARGET_MB,
        ),
        Row(
            "Fleet: API requests per poll interval, peak (mean)",
            f"{shared.peak_requests_per_interval} ({shared.mean_requests_per_interval:.0f})",
            f"unshared {unshared.peak_requests_per_interval} ({unshared.mean_requests_per_interval:.0f}); "
            f"max_age passed by the trigger: {shared.max_age_passed}",
            f"<= {requests_target:.0f}",
            shared.peak_requests_per_interval <= requests_target,
        ),
        Row(
            "Fleet: detection delay after RUNNING, p50 (max)",
            f"{shared.detection_delay_p50:.1f} s ({shared.detection_delay_max:.1f})",
            f"unshared {unshared.detection_delay_p50:.1f} s ({unshared.detection_delay_max:.1f})",
            "",
            None,
        ),
        Row(
            f"Storm ({storm.config['throttle_rate']:.0%} throttled): right events, none errors",
            f"{storm.right_events}/{config.triggers}, errors {storm.events.get('error', 0)}",
            f"events {storm.events}; missing {storm.missing}; {'; '.join(storm.error_messages[:2])}",
            "all, 0",
            storm.right_events == config.triggers and not storm.events.get("error"),
        ),
        Row(
            "Storm: retries (throttled answers) and slowdown",
            f"{storm.throttled} of {storm.requests} requests",
            f"detection p50 {storm.detection_delay_p50:.1f} s vs {shared.detection_delay_p50:.1f} s "
            f"(max {storm.detection_delay_max:.1f} vs {shared.detection_delay_max:.1f}); "
            f"run {storm.duration:.0f} s vs {shared.duration:.0f} s; lateness p99 {storm.lateness_p99 * 1000:.0f} ms; "
            f"peak requests/interval {storm.peak_requests_per_interval}",
            "",
            None,
        ),
    ]


def emulator_row(per_second: float) -> Row:
    return Row(
        "Emulator: GetDeploymentsByName answered per second (one keep-alive connection, signed ahead)",
        f"{per_second:.0f}/s",
        "server in its own process; http.client on the other core; one request at a time",
        f">= {EMULATOR_TARGET_PER_SECOND:.0f}/s",
        per_second >= EMULATOR_TARGET_PER_SECOND,
    )


def print_table(rows: list[Row]) -> None:
    headers = ("Figure", "Measured", "Target", "Result", "Beside it")
    cells = [(row.figure, row.measured, row.target, row.verdict, row.beside) for row in rows]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for line in cells:
        print("| " + " | ".join(cell.replace("|", "/") for cell in line) + " |")


def fleet_configs(quick: bool) -> tuple[FleetConfig, FleetConfig, FleetConfig]:
    shared = (
        FleetConfig(triggers=200, deployments=20, poll_interval=1.0, first_running_after=3, last_running_after=10)
        if quick
        else FleetConfig()
    )
    return shared, replace(shared, sharing=False), replace(shared, throttle_rate=0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark and print the table.")
    parser.add_argument("--quick", action="store_true", help="small fleets and few rounds, to check the harness")
    options = parser.parse_args(argv)
    exit_on_sigterm()
    prepare_airflow_home()
    rows: list[Row] = []
    print("import cost ...", file=sys.stderr, flush=True)
    rows += import_rows(imports.measure(runs=3 if options.quick else 7))
    print("client cost ...", file=sys.stderr, flush=True)
    rows += client_rows(client_cost.measure(rounds=3 if options.quick else 7))
    print("emulator throughput ...", file=sys.stderr, flush=True)
    rows.append(emulator_row(emulator_throughput.measure(requests=1000 if options.quick else 5000)))
    fleets = []
    for config in fleet_configs(options.quick):
        print(f"fleet {config} ...", file=sys.stderr, flush=True)
        fleets.append(run_fleet_process(config))
        print(json.dumps(asdict(fleets[-1])), file=sys.stderr, flush=True)
    rows += fleet_rows(*fleets)
    print_table(rows)
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
