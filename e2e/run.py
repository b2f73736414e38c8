"""End-to-end test in a real browser: ``make e2e`` (or ``.venv/bin/python e2e/run.py``).

Starts the VVP emulator and a real Airflow (``airflow standalone``, in a temporary AIRFLOW_HOME),
then runs ``browser.mjs``, which drives Debian's headless Chromium through what a data engineer
does: log in, create a Flink VVP connection through the form, press Test with a wrong and with the
right secret, trigger the example DAG and follow the sensor's "Flink VVP deployment" link; then the
emulator fails the job, the on-failure example's asset watcher turns that into an asset event, and the
asset's page shows it with the remediation DAG run it started. Screenshots of each step land in
``docs/screenshots/``.

Installs what it needs first (Debian's chromium, the npm packages of ``package-lock.json``), does
nothing when they are there already, and stops every process it started, also on failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processes import (
    ProcessGroups,
    apt_install,
    first_line,
    free_port,
    http_json,
    run_command,
    stop_on_sigterm,
    wait_for,
)
from processes import StepError as E2EError

E2E_DIR = Path(__file__).resolve().parent
REPO_DIR = E2E_DIR.parent
STATE_FILE = E2E_DIR / "state.json"
BROWSER_SCRIPT = E2E_DIR / "browser.mjs"
EXAMPLE_DAG = REPO_DIR / "example_dags" / "example_flink_vvp.py"
WATCHER_DAG = REPO_DIR / "example_dags" / "example_flink_vvp_on_failure.py"
SCREENSHOTS_DIR = REPO_DIR / "docs" / "screenshots"
VENV_BIN = Path(sys.executable).parent
DAG_ID = "example_flink_vvp"
WATCHER_DAG_ID = "example_flink_vvp_on_failure"
# The watcher polls this often here (30 s in the example): until the browser has made the connection its polls
# fail, and the wait between them doubles up to 8 polls.
WATCHER_POLL_INTERVAL = 2
EMULATOR_MODULE = "airflow_provider_flink_vvp.testing.emulator"
CHROMIUM = "/usr/bin/chromium"
MIN_NODE_MAJOR = 20  # playwright-core's own floor

INSTALL_TIMEOUT = 900.0
AIRFLOW_HEALTHY_TIMEOUT = 240.0
DAG_PARSED_TIMEOUT = 180.0
BROWSER_TIMEOUT = 600.0
AIRFLOW_LOG_TAIL_LINES = 60
TASK_LOG_TAIL_LINES = 15
MAX_LINE_CHARS = 400


@dataclass(frozen=True)
class Deployment:
    """The deployment of the e2e state file that the example DAG watches."""

    deployment_id: str
    name: str
    namespace: str
    workspace: str


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret: str


def main() -> int:
    started = time.monotonic()
    stop_on_sigterm()
    try:
        ensure_chromium()
        ensure_node_packages()
        run_e2e()
    except E2EError as error:
        log(f"FAILED after {time.monotonic() - started:.0f} s: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    log(f"passed in {time.monotonic() - started:.0f} s; screenshots in {SCREENSHOTS_DIR.relative_to(REPO_DIR)}/")
    return 0


# --- installing what the browser test needs (idempotent) ---------------------------------


def ensure_chromium() -> None:
    """Debian's chromium; its own Playwright download cannot work here (no network but the registries)."""
    if Path(CHROMIUM).exists():
        return
    log("installing Debian's chromium (apt-get)")
    # fonts-liberation: readable text in the screenshots.
    apt_install(["chromium", "fonts-liberation"], timeout=INSTALL_TIMEOUT)
    if not Path(CHROMIUM).exists():
        raise E2EError(f"apt-get installed chromium but {CHROMIUM} is still missing")


def ensure_node_packages() -> None:
    """``npm ci`` from the lock file, unless node_modules already holds exactly the locked versions."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise E2EError("node and npm are needed (Node.js >= 20); install them, e.g. `apt-get install nodejs npm`")
    version = subprocess.run(  # noqa: S603 - node from PATH
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    match = re.match(r"v(\d+)\.", version.strip())
    if not match or int(match.group(1)) < MIN_NODE_MAJOR:
        raise E2EError(f"Node.js >= {MIN_NODE_MAJOR} is needed for playwright-core, found {version.strip()!r}")
    if _node_modules_match_lock():
        return
    log("installing the npm packages of e2e/package-lock.json (npm ci)")
    run_command([npm, "ci", "--no-audit", "--no-fund"], cwd=E2E_DIR, timeout=INSTALL_TIMEOUT)


def _node_modules_match_lock() -> bool:
    lock = json.loads((E2E_DIR / "package-lock.json").read_text(encoding="utf-8"))
    for path, locked in lock.get("packages", {}).items():
        if not path:
            continue
        installed = E2E_DIR / path / "package.json"
        if not installed.exists():
            return False
        if json.loads(installed.read_text(encoding="utf-8")).get("version") != locked.get("version"):
            return False
    return True


# --- the run ------------------------------------------------------------------------------


def run_e2e() -> None:
    airflow_home = Path(tempfile.mkdtemp(prefix="flink-vvp-e2e-"))
    log(f"AIRFLOW_HOME {airflow_home}")
    state = json.loads(STATE_FILE.read_text(encoding="utf-8"))
    access_key = AccessKey(*next(iter(state["access_keys"].items())))
    deployment = _watched_deployment(state)
    airflow_log = airflow_home / "standalone.log"
    admin_password: str | None = None
    passed = False
    processes = ProcessGroups()
    try:
        api_port = free_port()
        base_url = f"http://127.0.0.1:{api_port}"
        env = _airflow_env(airflow_home, api_port, deployment)
        with airflow_log.open("wb") as log_file:
            airflow = processes.start(
                "airflow standalone", ["airflow", "standalone"], env=env, stdout=log_file, cwd=airflow_home
            )
        wait_until_healthy(base_url, airflow, airflow_log)
        admin_password = _admin_password(airflow_home)
        token = api_token(base_url, admin_password)
        wait_until_dag_parsed(base_url, token, airflow, airflow_log)

        # Started last: its job's timeline (state.json) runs from here, so the sensor still finds
        # the job starting and defers to the triggerer until it runs.
        emulator = processes.start(
            "emulator",
            [
                *[sys.executable, "-m", EMULATOR_MODULE, "--host", "127.0.0.1", "--port", "0"],
                # --admin: the browser steps fail the job through the emulator's admin API.
                *["--state", str(STATE_FILE), "--admin"],
            ],
            env=_without_cloud_credentials(os.environ),
            stdout=subprocess.PIPE,
            cwd=REPO_DIR,
        )
        emulator_url = first_line(emulator, timeout=30.0, name="the emulator")
        log(f"emulator at {emulator_url}")

        expected_link = _expected_link(deployment)
        run_browser(
            {
                "E2E_BASE_URL": base_url,
                "E2E_ADMIN_PASSWORD": admin_password,
                "E2E_EMULATOR_URL": emulator_url,
                "E2E_ACCESS_KEY_ID": access_key.access_key_id,
                "E2E_ACCESS_KEY_SECRET": access_key.secret,
                "E2E_WORKSPACE": deployment.workspace,
                "E2E_NAMESPACE": deployment.namespace,
                "E2E_DAG_ID": DAG_ID,
                "E2E_SENSOR_TASK_ID": "wait_until_running",
                "E2E_EXPECTED_LINK": expected_link,
                "E2E_DEPLOYMENT_ID": deployment.deployment_id,
                "E2E_WATCHER_DAG_ID": WATCHER_DAG_ID,
                "E2E_ASSET_URI": _asset_uri(deployment),
                "E2E_SCREENSHOTS_DIR": str(SCREENSHOTS_DIR),
                "E2E_FAILURE_DIR": str(airflow_home / "failure"),
            }
        )
        passed = True
    except E2EError:
        _print_diagnostics(airflow_home, airflow_log, admin_password)
        raise
    finally:
        processes.stop_all(log=log)
    if passed:
        shutil.rmtree(airflow_home, ignore_errors=True)


def _watched_deployment(state: Mapping[str, Any]) -> Deployment:
    raw = state["deployments"][0]
    return Deployment(raw["deploymentId"], raw["name"], raw["namespace"], raw["workspace"])


def _expected_link(deployment: Deployment) -> str:
    # The link the connection made by the browser (no console_url template, no region) must give.
    from airflow_provider_flink_vvp.console import deployment_console_url

    return deployment_console_url(
        deployment_id=deployment.deployment_id, namespace=deployment.namespace, workspace=deployment.workspace
    )


def _asset_uri(deployment: Deployment) -> str:
    from airflow_provider_flink_vvp.assets import DeploymentAddress

    return DeploymentAddress(deployment.workspace, deployment.namespace, deployment.name).uri


def _without_cloud_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    # The connection must come from the form alone, not from the environment of whoever runs this.
    return {
        name: value
        for name, value in environ.items()
        if not name.startswith(("ALIBABA_CLOUD_", "AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_HOME"))
    }


def _airflow_env(airflow_home: Path, api_port: int, deployment: Deployment) -> dict[str, str]:
    dags_folder = airflow_home / "dags"
    dags_folder.mkdir()
    shutil.copy2(EXAMPLE_DAG, dags_folder / EXAMPLE_DAG.name)
    (dags_folder / WATCHER_DAG.name).write_text(_watcher_dag_source(deployment), encoding="utf-8")
    return {
        **_without_cloud_credentials(os.environ),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # Airflow 3 disables the UI's Test button unless this is set.
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        # Tasks report to the API server; the default (localhost:8080) is not where it listens.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # Fixed defaults (8793, 8794) would collide with another Airflow on this machine.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


def _watcher_dag_source(deployment: Deployment) -> str:
    """The on-failure example, watching the e2e deployment every :data:`WATCHER_POLL_INTERVAL` seconds."""
    source = WATCHER_DAG.read_text(encoding="utf-8")
    settings = {
        "WORKSPACE": deployment.workspace,
        "NAMESPACE": deployment.namespace,
        "DEPLOYMENT_NAME": deployment.name,
        "DEPLOYMENT_ID": deployment.deployment_id,
    }
    replacements = [(rf'^{name} = ".*"$', f"{name} = {json.dumps(value)}") for name, value in settings.items()]
    replacements.append((r"poll_interval=30,", f"poll_interval={WATCHER_POLL_INTERVAL},"))
    for pattern, replacement in replacements:
        source, count = re.subn(pattern, replacement, source, flags=re.MULTILINE)
        if count != 1:
            raise E2EError(f"{WATCHER_DAG.name} has no line matching {pattern!r} to point it at the e2e deployment")
    return source


def _admin_password(airflow_home: Path) -> str:
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    wait_for(lambda: passwords.exists(), timeout=60.0, what=f"{passwords.name} to be written")
    return str(json.loads(passwords.read_text(encoding="utf-8"))["admin"])


def run_browser(settings: Mapping[str, str]) -> None:
    log("driving Chromium (e2e/browser.mjs)")
    node = shutil.which("node") or "node"
    env = {**os.environ, **settings, "E2E_CHROMIUM": CHROMIUM}
    try:
        completed = subprocess.run(  # noqa: S603 - our own script
            [node, str(BROWSER_SCRIPT)], cwd=E2E_DIR, env=env, stdin=subprocess.DEVNULL, timeout=BROWSER_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise E2EError(f"the browser steps took more than {BROWSER_TIMEOUT:.0f} s") from None
    if completed.returncode != 0:
        raise E2EError(f"the browser steps failed (exit {completed.returncode}; see above)")


# --- waiting on Airflow ----------------------------------------------------------------


def wait_until_healthy(base_url: str, airflow: subprocess.Popen[bytes], airflow_log: Path) -> None:
    started = time.monotonic()

    def healthy() -> bool:
        _check_alive(airflow, airflow_log)
        try:
            health = http_json(f"{base_url}/api/v2/monitor/health")
        except E2EError:
            return False
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(name) or {}).get("status") == "healthy" for name in components)

    wait_for(healthy, timeout=AIRFLOW_HEALTHY_TIMEOUT, what="Airflow to report every component healthy")
    log(f"Airflow healthy at {base_url} after {time.monotonic() - started:.0f} s")


def wait_until_dag_parsed(base_url: str, token: str, airflow: subprocess.Popen[bytes], airflow_log: Path) -> None:
    def parsed() -> bool:
        _check_alive(airflow, airflow_log)
        errors = http_json(f"{base_url}/api/v2/importErrors", token=token).get("import_errors", [])
        if errors:
            raise E2EError(f"an example DAG does not import: {errors[0].get('stack_trace', errors[0])}")
        try:
            for dag_id in (DAG_ID, WATCHER_DAG_ID):
                http_json(f"{base_url}/api/v2/dags/{dag_id}", token=token)
        except E2EError:
            return False
        return True

    wait_for(parsed, timeout=DAG_PARSED_TIMEOUT, what=f"the DAG processor to parse {DAG_ID} and {WATCHER_DAG_ID}")
    log(f"{DAG_ID} and {WATCHER_DAG_ID} parsed")


def _check_alive(process: subprocess.Popen[bytes], airflow_log: Path) -> None:
    if process.poll() is not None:
        raise E2EError(f"airflow standalone exited with {process.returncode} (log: {airflow_log})")


def api_token(base_url: str, password: str) -> str:
    body = json.dumps({"username": "admin", "password": password}).encode()
    answer = http_json(f"{base_url}/auth/token", data=body)
    return str(answer["access_token"])


# --- diagnostics -----------------------------------------------------------------------


def _print_diagnostics(airflow_home: Path, airflow_log: Path, admin_password: str | None) -> None:
    secrets = [secret for secret in (admin_password,) if secret]
    log(f"kept {airflow_home} for inspection")
    if airflow_log.exists():
        _print_tail("airflow standalone", airflow_log, secrets, AIRFLOW_LOG_TAIL_LINES)
    task_logs = sorted((airflow_home / "logs").glob("dag_id=*/**/*.log"), key=lambda path: path.stat().st_mtime)
    for task_log in task_logs[-3:]:
        _print_tail(str(task_log.relative_to(airflow_home)), task_log, secrets, TASK_LOG_TAIL_LINES)
    failure_dir = airflow_home / "failure"
    if failure_dir.exists():
        for shot in sorted(failure_dir.iterdir()):
            log(f"browser state at the failure: {shot}")


def _print_tail(title: str, path: Path, secrets: list[str], count: int) -> None:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-count:]
    print(f"----- last {len(lines)} lines of {title} -----", file=sys.stderr)
    for line in lines:
        for secret in secrets:
            line = line.replace(secret, "***")
        print(line if len(line) <= MAX_LINE_CHARS else f"{line[:MAX_LINE_CHARS]}...", file=sys.stderr)
    print(f"----- end of {title} -----", file=sys.stderr, flush=True)


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
