"""Import cost: fresh interpreters importing airflow.sdk alone, our operators and sensors, or the official SDK client.

Each child times its imports itself (CPU time and wall time), so interpreter start-up is left out.
A child importing our modules (or the official client) imports airflow.sdk first and times it
apart: the sum is what a fresh interpreter pays for our modules (compared with airflow.sdk alone,
as the issue asks), and the second part is the cost on top of airflow.sdk in the same process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

OUR_MODULES = ("airflow_provider_flink_vvp.operators.vvp", "airflow_provider_flink_vvp.sensors.vvp")
SDK_CLIENT_MODULE = "alibabacloud_ververica20220718.client"
# Modules a DAG file importing our operators and sensors must not load.
HEAVY_MODULES = (
    "requests",
    "httpx",
    "tenacity",
    "airflow_provider_flink_vvp.client",
    "airflow_provider_flink_vvp.sharing",
    "airflow_provider_flink_vvp.hooks.vvp",
    "airflow_provider_flink_vvp.triggers.vvp",
    "alibabacloud_credentials",
)

_CHILD = """
import importlib, json, sys, time
def timed(modules):
    wall, cpu = time.perf_counter(), time.process_time()
    for module in modules:
        importlib.import_module(module)
    return time.process_time() - cpu, time.perf_counter() - wall
base_cpu, base_wall = timed(["airflow.sdk"])
heavy = json.loads(sys.argv[2])
loaded_by_base = [name for name in heavy if name in sys.modules]
extra_cpu, extra_wall = timed(json.loads(sys.argv[1]))
print(json.dumps({
    "base_cpu": base_cpu, "base_wall": base_wall, "extra_cpu": extra_cpu, "extra_wall": extra_wall,
    "loaded_by_base": loaded_by_base, "loaded": [name for name in heavy if name in sys.modules],
}))
"""


@dataclass(frozen=True)
class ImportSample:
    base_cpu: float
    base_wall: float
    extra_cpu: float
    extra_wall: float
    loaded_by_base: list[str]
    loaded: list[str]

    @property
    def total_cpu(self) -> float:
        return self.base_cpu + self.extra_cpu

    @property
    def total_wall(self) -> float:
        return self.base_wall + self.extra_wall


@dataclass(frozen=True)
class ImportResult:
    runs: int
    sdk_alone_cpu: float  # median CPU seconds of airflow.sdk alone
    sdk_alone_cpu_spread: float  # interquartile range of those runs: the noise of a difference
    ours_minus_sdk_cpu: float  # median(ours) - median(airflow.sdk alone), fresh interpreters
    ours_minus_sdk_wall: float
    ours_on_top_cpu: float  # median of our imports timed after airflow.sdk, same interpreter
    official_minus_sdk_cpu: float
    official_on_top_cpu: float
    official_available: bool
    heavy_loaded_by_ours: list[str]  # HEAVY_MODULES present after ours that airflow.sdk alone did not load
    heavy_loaded_by_sdk: list[str]


# Imports are timed as in a deployed Airflow, where modules load from compiled bytecode (pip writes it at
# install time). An environment that forbids writing it would time the compiler instead: about half of
# our modules' import time here. The warm-up round of :func:`measure` writes the bytecode.
_WITH_BYTECODE = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def sample(modules: Sequence[str]) -> ImportSample:
    """One fresh interpreter importing airflow.sdk, then ``modules``."""
    completed = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _CHILD, json.dumps(list(modules)), json.dumps(HEAVY_MODULES)],
        capture_output=True,
        text=True,
        check=True,
        env=_WITH_BYTECODE,
        timeout=300,
    )
    return ImportSample(**json.loads(completed.stdout.strip().splitlines()[-1]))


def official_client_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("alibabacloud_ververica20220718") is not None


def measure(runs: int = 7) -> ImportResult:
    """``runs`` interleaved rounds of each variant, after a warm-up round that writes the bytecode and fills
    the page cache."""
    official = official_client_installed()
    variants: dict[str, list[str]] = {"sdk": [], "ours": list(OUR_MODULES)}
    if official:
        variants["official"] = [SDK_CLIENT_MODULE]
    for modules in variants.values():
        sample(modules)
    samples: dict[str, list[ImportSample]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, modules in variants.items():
            samples[name].append(sample(modules))
    return _summarize(runs, samples)


def _summarize(runs: int, samples: dict[str, list[ImportSample]]) -> ImportResult:
    sdk, ours = samples["sdk"], samples["ours"]
    official = samples.get("official", [])
    sdk_cpu = statistics.median(s.total_cpu for s in sdk)
    quartiles = statistics.quantiles([s.total_cpu for s in sdk], n=4)
    heavy_after_sdk = set().union(*(s.loaded for s in sdk))
    return ImportResult(
        runs=runs,
        sdk_alone_cpu=sdk_cpu,
        sdk_alone_cpu_spread=quartiles[2] - quartiles[0],
        ours_minus_sdk_cpu=statistics.median(s.total_cpu for s in ours) - sdk_cpu,
        ours_minus_sdk_wall=statistics.median(s.total_wall for s in ours)
        - statistics.median(s.total_wall for s in sdk),
        ours_on_top_cpu=statistics.median(s.extra_cpu for s in ours),
        official_minus_sdk_cpu=(statistics.median(s.total_cpu for s in official) - sdk_cpu) if official else 0.0,
        official_on_top_cpu=statistics.median(s.extra_cpu for s in official) if official else 0.0,
        official_available=bool(official),
        heavy_loaded_by_ours=sorted(set().union(*(s.loaded for s in ours)) - heavy_after_sdk),
        heavy_loaded_by_sdk=sorted(heavy_after_sdk),
    )


if __name__ == "__main__":
    from emulator_process import prepare_airflow_home

    prepare_airflow_home()
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 7).__dict__, indent=2))
