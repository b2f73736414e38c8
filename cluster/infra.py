"""The cluster's processes: PostgreSQL, Redis, the emulator and Airflow's (Celery) components.

Everything listens on a loopback port of its own, logs to one file per process under the logs
folder, and is stopped by process group at the end (never by name: other Airflows may run here).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from processes import ProcessGroups, StepError, apt_install, first_line, free_port, http_json, wait_for

CLUSTER_DIR = Path(__file__).resolve().parent
REPO_DIR = CLUSTER_DIR.parent
DAGS_DIR = CLUSTER_DIR / "dags"
VENV_BIN = Path(sys.executable).parent
POSTGRES_ROOT = Path("/usr/lib/postgresql")
EMULATOR_MODULE = "airflow_provider_flink_vvp.testing.emulator"
DB_NAME = DB_USER = "airflow"
WORKERS = ("worker-a", "worker-b")
TRIGGERERS = ("triggerer-a", "triggerer-b")
WORKER_CONCURRENCY = 8

INSTALL_TIMEOUT = 900.0
START_TIMEOUT = 240.0
# A killed triggerer's triggers move to the other one after this many seconds without a heartbeat.
TRIGGERER_HEALTH_CHECK_THRESHOLD = 10
# A task whose worker died is failed (and retried) after this many seconds without a heartbeat.
TASK_HEARTBEAT_TIMEOUT = 20
# A task queued on a worker that died before it started is queued again after this many seconds.
TASK_QUEUED_TIMEOUT = 45


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_installed() -> None:
    """Debian's PostgreSQL and Redis, and the Python packages of the ``cluster`` extra."""
    if not _postgres_bin_dir() or not shutil.which("redis-server"):
        log("installing Debian's postgresql and redis-server (apt-get)")
        apt_install(["postgresql", "redis-server"], timeout=INSTALL_TIMEOUT)


def _postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder."""
    versions = sorted(
        (path for path in POSTGRES_ROOT.glob("*/bin") if (path / "initdb").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


@dataclass
class Cluster:
    """Ports, settings and the started processes of one run."""

    run_dir: Path
    logs_dir: Path
    processes: ProcessGroups = field(default_factory=ProcessGroups)
    ports: dict[str, int] = field(default_factory=dict)
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    connection_uri: str = ""

    def port(self, name: str) -> int:
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port('api')}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.port('emulator')}"

    @property
    def db_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port('postgres')} user={DB_USER} dbname={DB_NAME}"

    def start(self, name: str, command: list[str], *, env: Mapping[str, str], user: str | None = None) -> None:
        with (self.logs_dir / f"{name}.log").open("ab") as log_file:
            self.started[name] = self.processes.start(
                name, command, env=env, stdout=log_file, cwd=self.run_dir, user=user
            )

    def check_alive(self) -> None:
        for name, process in self.started.items():
            if process.poll() is not None:
                raise StepError(f"{name} exited with {process.returncode} (log: {self.logs_dir / name}.log)")

    def kill(self, name: str) -> None:
        """SIGKILL a process and its children, as when its machine dies; it is not restarted."""
        self.processes.kill(self.started.pop(name))

    def stop(self, name: str) -> None:
        self.processes.stop(self.started.pop(name), name=name, log=log)

    # --- PostgreSQL and Redis ---------------------------------------------------------------

    def start_postgres(self) -> None:
        bin_dir = _postgres_bin_dir()
        if bin_dir is None:
            raise StepError(f"no PostgreSQL under {POSTGRES_ROOT}: apt-get install -y postgresql")
        data_dir = self.run_dir / "postgres"
        data_dir.mkdir()
        # PostgreSQL refuses to run as root: its files belong to Debian's postgres user.
        user = "postgres" if os.geteuid() == 0 else None
        if user:
            shutil.chown(self.run_dir, user)
            shutil.chown(data_dir, user)
        with (self.logs_dir / "initdb.log").open("ab") as log_file:
            initdb = self.processes.start(
                "initdb",
                [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", DB_USER, "--auth=trust", "-E", "UTF8"],
                env=os.environ,
                stdout=log_file,
                cwd=data_dir,
                user=user,
            )
            if initdb.wait(timeout=START_TIMEOUT) != 0:
                raise StepError(f"initdb failed (log: {self.logs_dir / 'initdb.log'})")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port("postgres")),
            "unix_socket_directories": str(data_dir),
            "max_connections": "300",
            "fsync": "off",  # a throwaway database: durability costs time here and buys nothing
        }
        command = [str(bin_dir / "postgres"), "-D", str(data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self.start("postgres", command, env=os.environ, user=user)

        def accepting() -> bool:
            self.check_alive()
            try:
                psycopg.connect(self.db_dsn.replace(f"dbname={DB_NAME}", "dbname=postgres")).close()
            except psycopg.OperationalError:
                return False
            return True

        wait_for(accepting, timeout=60.0, what="PostgreSQL to accept connections", interval=0.5)
        admin = psycopg.connect(self.db_dsn.replace(f"dbname={DB_NAME}", "dbname=postgres"))
        admin.autocommit = True
        with admin:
            admin.execute(f"CREATE DATABASE {DB_NAME}")
        log(f"PostgreSQL on 127.0.0.1:{self.port('postgres')}")

    def start_redis(self) -> None:
        port = self.port("redis")
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"]
        self.start("redis", command, env=os.environ)
        wait_for(lambda: _redis_pings(port, self.check_alive), timeout=30.0, what="Redis", interval=0.3)
        log(f"Redis on 127.0.0.1:{port}")

    # --- the emulator ------------------------------------------------------------------------

    def start_emulator(self, state_file: Path, saved_state: Path, *, durations: Mapping[str, float]) -> None:
        """The emulator on its own port (the same one after a restart), saving its state when it stops."""
        command = [
            sys.executable,
            "-m",
            EMULATOR_MODULE,
            "--port",
            str(self.port("emulator")),
            "--state",
            str(state_file),
            "--save-state",
            str(saved_state),
            "--admin",
        ]
        for name, seconds in durations.items():
            command += [f"--{name}-seconds", str(seconds)]
        with (self.logs_dir / "emulator.log").open("ab") as log_file:
            process = self.processes.start(
                "emulator", command, env=_clean_env(), stdout=subprocess.PIPE, cwd=self.run_dir
            )
            self.started["emulator"] = process
            url = first_line(process, timeout=30.0, name="the emulator")
            log_file.write(f"listening at {url}\n".encode())
        if url != self.emulator_url:
            raise StepError(f"the emulator listens at {url}, not at {self.emulator_url}")

    def emulator_admin(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A call to the emulator's admin API (``/_emulator``): GET, or POST ``body``."""
        data = None if body is None else json.dumps(body).encode()
        return http_json(f"{self.emulator_url}/_emulator{path}", data=data)

    # --- Airflow -----------------------------------------------------------------------------

    def airflow_env(self, node: str, **settings: str) -> dict[str, str]:
        """The environment of one Airflow process: every setting as an AIRFLOW__ variable."""
        db = f"{DB_USER}@127.0.0.1:{self.port('postgres')}/{DB_NAME}"
        airflow_home = self.run_dir / "airflow"
        config = {
            "CORE__EXECUTOR": "CeleryExecutor",
            "CORE__DAGS_FOLDER": str(self.run_dir / "dags"),
            "CORE__LOAD_EXAMPLES": "False",
            "CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "CORE__PARALLELISM": "64",
            "CORE__MAX_ACTIVE_TASKS_PER_DAG": "128",
            "CORE__HOSTNAME_CALLABLE": "node_name.node_name",
            "CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            # psycopg 3 serves both Airflow's sync and async engines: one driver.
            "DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://{db}",
            "DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+psycopg://{db}",
            "CELERY__BROKER_URL": f"redis://127.0.0.1:{self.port('redis')}/0",
            "CELERY__RESULT_BACKEND": f"db+postgresql+psycopg://{db}",
            "CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "API_AUTH__JWT_SECRET": self.jwt_secret,
            "API__SECRET_KEY": self.jwt_secret,
            "API__HOST": "127.0.0.1",
            "API__PORT": str(self.port("api")),
            "API__WORKERS": "1",
            "LOGGING__BASE_LOG_FOLDER": str(self.logs_dir / "tasks"),
            "LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(self.logs_dir / "dag-processor"),
            "SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
            "SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "SCHEDULER__TASK_QUEUED_TIMEOUT": str(TASK_QUEUED_TIMEOUT),
            "SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
            "SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
            "TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            # Parsed once: a re-parse every 30 s costs CPU the scenario needs.
            "DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            **{name.upper(): value for name, value in settings.items()},
        }
        return {
            **_clean_env(),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(CLUSTER_DIR),
            "AIRFLOW_HOME": str(airflow_home),
            "CLUSTER_NODE_NAME": node,
            "AIRFLOW_CONN_FLINK_VVP_DEFAULT": self.connection_uri,
            **{f"AIRFLOW__{name}": value for name, value in config.items()},
        }

    def migrate(self) -> None:
        (self.run_dir / "airflow").mkdir(exist_ok=True)
        dags = self.run_dir / "dags"
        shutil.copytree(DAGS_DIR, dags, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        log("migrating a fresh metadata DB (airflow db migrate)")
        self.start("db-migrate", ["airflow", "db", "migrate"], env=self.airflow_env("db-migrate"))
        process = self.started.pop("db-migrate")
        if process.wait(timeout=START_TIMEOUT) != 0:
            raise StepError(f"airflow db migrate failed (log: {self.logs_dir / 'db-migrate.log'})")

    def start_airflow(self) -> None:
        self.start("api-server", ["airflow", "api-server"], env=self.airflow_env("api-server"))
        self.start("scheduler", ["airflow", "scheduler"], env=self.airflow_env("scheduler"))
        self.start("dag-processor", ["airflow", "dag-processor"], env=self.airflow_env("dag-processor"))
        for name in TRIGGERERS:
            env = self.airflow_env(name, logging__trigger_log_server_port=str(free_port()))
            self.start(name, ["airflow", "triggerer"], env=env)
        for name in WORKERS:
            env = self.airflow_env(name, logging__worker_log_server_port=str(free_port()))
            command = ["airflow", "celery", "worker", "--celery-hostname", f"{name}@%h"]
            self.start(name, [*command, "--concurrency", str(WORKER_CONCURRENCY)], env=env)

    def wait_healthy(self) -> None:
        started = time.monotonic()
        wait_for(self._api_healthy, timeout=START_TIMEOUT, what="the api-server to report every component healthy")
        wait_for(
            lambda: self.live_triggerers() == set(TRIGGERERS),
            timeout=START_TIMEOUT,
            what=f"both triggerers ({', '.join(TRIGGERERS)}) to heartbeat in the metadata DB",
        )
        wait_for(
            lambda: self.celery_workers() == set(WORKERS),
            timeout=START_TIMEOUT,
            what=f"both Celery workers ({', '.join(WORKERS)}) to answer a ping",
            interval=2.0,
        )
        log(
            f"healthy after {time.monotonic() - started:.0f} s: api-server, scheduler, dag-processor, "
            f"triggerers {sorted(self.live_triggerers())}, workers {sorted(self.celery_workers())}"
        )

    def _api_healthy(self) -> bool:
        self.check_alive()
        try:
            health = http_json(f"{self.api_url}/api/v2/monitor/health")
        except StepError:
            return False
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(name) or {}).get("status") == "healthy" for name in components)

    def live_triggerers(self) -> set[str]:
        """Hostnames of the triggerers whose job heartbeat is fresh."""
        rows = self.query(
            "SELECT hostname FROM job WHERE job_type = 'TriggererJob' AND state = 'running' "
            "AND latest_heartbeat > now() - make_interval(secs => %s)",
            (TRIGGERER_HEALTH_CHECK_THRESHOLD,),
        )
        return {row[0] for row in rows}

    def celery_workers(self) -> set[str]:
        """Names of the Celery workers that answer a broadcast ping (``celery inspect ping``)."""
        self.check_alive()
        from celery import Celery

        app = Celery(broker=f"redis://127.0.0.1:{self.port('redis')}/0")
        try:
            replies = app.control.ping(timeout=2.0) or []
        finally:
            app.close()
        return {name.partition("@")[0] for reply in replies for name in reply}

    def api_token(self) -> str:
        passwords = self.run_dir / "airflow" / "simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text(encoding="utf-8"))["admin"]
        body = json.dumps({"username": "admin", "password": password}).encode()
        return str(http_json(f"{self.api_url}/auth/token", data=body)["access_token"])

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.db() as connection, connection.cursor() as cursor:
            cursor.execute(sql, parameters)
            return list(cursor.fetchall())

    @contextmanager
    def db(self) -> Iterator[Any]:
        connection = psycopg.connect(self.db_dsn)
        try:
            yield connection
        finally:
            connection.close()


def _redis_pings(port: int, check_alive: Callable[[], None]) -> bool:
    check_alive()
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _clean_env() -> dict[str, str]:
    # Nothing of the caller's Airflow or cloud settings leaks in.
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ALIBABA_CLOUD_", "AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_HOME"))
    }
