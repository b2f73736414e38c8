"""A production-shaped Airflow with faults: ``make cluster`` (or ``.venv/bin/python cluster/run.py``).

Starts PostgreSQL, Redis, the VVP emulator and Airflow with the CeleryExecutor (api-server,
scheduler, dag-processor, two Celery workers, two triggerers), runs one task through Celery, then
the scenario of ``scenario.py`` with its faults:

1. a Celery worker is SIGKILLed while it runs a start-job task that has started its job (or, failing
   that, a reschedule-mode poke): its tasks fail by missing heartbeats and run again on the other;
2. once every sensor waits, the triggerer holding the most triggers is SIGKILLed, and one job they wait
   on moves to its target: the other triggerer must take every trigger over and fire those events;
3. the emulator stops for 20 s (saving its state) and starts again on the same port from that state;
4. 30 % of API requests are throttled for a minute;
5. the jobs move to their final states (two watched deployments fail).

Prints PASS/FAIL checks and figures and exits non-zero on any FAIL. Every process logs under
``build/cluster/logs/`` (task and trigger logs under ``tasks/``), kept after the run.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # the shared process helpers

import scenario
from infra import REPO_DIR, TRIGGERER_HEALTH_CHECK_THRESHOLD, TRIGGERERS, WORKERS, Cluster, ensure_installed, log
from processes import StepError, http_json, stop_on_sigterm, wait_for

LOGS_DIR = REPO_DIR / "build" / "cluster" / "logs"
SMOKE_DAG_ID = "cluster_smoke"
DAG_RUN_TIMEOUT = 180.0
WAITING_TIMEOUT = 300.0
WORKER_KILL_WINDOW = 60.0
TAKEOVER_TIMEOUT = 90.0
OUTAGE_SECONDS = 20.0
THROTTLE_RATE = 0.3
THROTTLE_SECONDS = 60.0
FINISH_TIMEOUT = 300.0
MONITOR_INTERVAL = 0.5
# StartJobWithParams answers come this slowly at first (a few seconds for a job's JSON): the job exists,
# the task has not deferred yet, and its worker is killed in that window.
SLOW_START_MS_PER_BYTE = 5
# The line a triggerer writes to a trigger's log as it starts running it.
TRIGGER_STARTED = re.compile(r'"event":"trigger [^"]* starting"')
TERMINAL_STATES = ("success", "failed", "upstream_failed", "skipped", "removed")


def main() -> int:
    started = time.monotonic()
    stop_on_sigterm()
    try:
        ensure_installed()
        passed = run_cluster()
    except StepError as error:
        log(f"FAILED after {time.monotonic() - started:.0f} s: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    log(f"{'passed' if passed else 'FAILED'} in {time.monotonic() - started:.0f} s; logs in {LOGS_DIR}")
    return 0 if passed else 1


def run_cluster() -> bool:
    shutil.rmtree(LOGS_DIR, ignore_errors=True)
    LOGS_DIR.mkdir(parents=True)
    run_dir = Path(tempfile.mkdtemp(prefix="flink-vvp-cluster-"))
    credentials = scenario.Credentials.generate()
    cluster = Cluster(run_dir=run_dir, logs_dir=LOGS_DIR)
    cluster.connection_uri = _connection(credentials, cluster.emulator_url)
    log(f"run folder {run_dir}")
    try:
        state_file, saved_state = run_dir / "emulator-state.json", run_dir / "emulator-saved.json"
        state_file.write_text(json.dumps(scenario.state_document(credentials)), encoding="utf-8")
        cluster.start_postgres()
        cluster.start_redis()
        cluster.start_emulator(state_file, saved_state, durations=_held_durations())
        cluster.migrate()
        (run_dir / "dags" / "scenario.json").write_text(json.dumps(scenario.dag_document()), encoding="utf-8")
        cluster.start_airflow()
        cluster.wait_healthy()
        token = cluster.api_token()
        run_smoke(cluster, token)
        run = Run(cluster=cluster, saved_state=saved_state)
        run.play(token)
        results = run.checks(credentials)
    finally:
        cluster.processes.stop_all(log=log)
        shutil.rmtree(run_dir, ignore_errors=True)
    results += [secrets_check(credentials)]
    for result in results:
        print(result.line(), flush=True)
    run.print_figures()
    return all(result.passed for result in results)


def _connection(credentials: scenario.Credentials, emulator_url: str) -> str:
    """``flink_vvp_default`` as JSON, with an STS token (sent on every request, never to be logged)."""
    return json.dumps(
        {
            "conn_type": "flink_vvp",
            "host": emulator_url,
            "login": credentials.access_key_id,
            "password": credentials.secret,
            "extra": {
                "workspace": scenario.WORKSPACE,
                "namespace": scenario.NAMESPACE,
                "security_token": credentials.security_token,
            },
        }
    )


def _held_durations() -> dict[str, float]:
    return {"starting": scenario.HELD_SECONDS, "batch-running": scenario.HELD_SECONDS}


def run_smoke(cluster: Cluster, token: str) -> None:
    """One task through the broker, a worker and the Execution API."""
    started = time.monotonic()
    run_id = trigger(cluster, token, SMOKE_DAG_ID)
    state = wait_dag_run(cluster, SMOKE_DAG_ID, run_id, timeout=DAG_RUN_TIMEOUT)
    if state != "success":
        raise StepError(f"{SMOKE_DAG_ID} ended {state}")
    log(f"{SMOKE_DAG_ID}: one task through Celery in {time.monotonic() - started:.0f} s")


def trigger(cluster: Cluster, token: str, dag_id: str) -> str:
    def parsed() -> bool:
        cluster.check_alive()
        return bool(cluster.query("SELECT 1 FROM dag WHERE dag_id = %s AND NOT is_paused", (dag_id,)))

    wait_for(parsed, timeout=DAG_RUN_TIMEOUT, what=f"the dag-processor to parse {dag_id}")
    body = b'{"logical_date": null}'
    answer = http_json(f"{cluster.api_url}/api/v2/dags/{dag_id}/dagRuns", token=token, data=body)
    return str(answer["dag_run_id"])


def wait_dag_run(cluster: Cluster, dag_id: str, run_id: str, *, timeout: float) -> str:
    states: list[str] = []

    def finished() -> bool:
        cluster.check_alive()
        rows = cluster.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        states[:] = [row[0] for row in rows]
        return bool(states) and states[0] in ("success", "failed")

    wait_for(finished, timeout=timeout, what=f"{dag_id} run {run_id} to finish")
    return states[0]


# --- watching the scenario's task instances --------------------------------------------------


@dataclass(frozen=True)
class TaskSeen:
    state: str | None
    try_number: int
    hostname: str | None
    trigger_id: int | None
    triggerer: str | None  # the hostname of the triggerer its trigger is assigned to


class Monitor:
    """Samples the scenario's task instances (and where their triggers run) every :data:`MONITOR_INTERVAL`."""

    def __init__(self, cluster: Cluster, run_id: str) -> None:
        self._cluster = cluster
        self._run_id = run_id
        self.samples: list[tuple[float, dict[str, TaskSeen]]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, name="monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def latest(self) -> dict[str, TaskSeen]:
        return self.samples[-1][1] if self.samples else {}

    def sample(self) -> dict[str, TaskSeen]:
        rows = self._cluster.query(
            "SELECT ti.task_id, ti.state, ti.try_number, ti.hostname, ti.trigger_id, j.hostname "
            "FROM task_instance ti LEFT JOIN trigger t ON ti.trigger_id = t.id "
            "LEFT JOIN job j ON t.triggerer_id = j.id WHERE ti.dag_id = %s AND ti.run_id = %s",
            (scenario.DAG_ID, self._run_id),
        )
        return {row[0]: TaskSeen(*row[1:]) for row in rows}

    def _sample_until_stopped(self) -> None:
        while not self._stopping.wait(MONITOR_INTERVAL):
            try:
                self.samples.append((time.time(), self.sample()))
            except Exception as error:  # the DB may be briefly busy: the next sample comes
                log(f"monitor: {error}")


# --- the scenario ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


@dataclass
class Run:
    """The scenario's run: its faults, what they hit, and the figures."""

    cluster: Cluster
    saved_state: Path
    run_id: str = ""
    monitor: Monitor | None = None
    killed_worker: str = ""
    killed_worker_tasks: dict[str, int] = field(default_factory=dict)  # task_id: try number at the kill
    worker_kill_reason: str = ""
    killed_triggerer: str = ""
    survivor: str = ""
    held_triggers: dict[str, int] = field(default_factory=dict)  # task_id: trigger id on the killed triggerer
    triggerer_kill_at: float = 0.0
    takeover_seconds: float | None = None
    takeover_at: float = 0.0
    trigger_split: dict[str, int] = field(default_factory=dict)
    waiting_since: float = 0.0
    outage_at: float = 0.0
    jobs_before_outage: dict[str, str] = field(default_factory=dict)  # jobId: status
    jobs_after_outage: dict[str, str] = field(default_factory=dict)
    request_seconds: dict[int, int] = field(default_factory=dict)
    end_dates: dict[str, datetime] = field(default_factory=dict)
    final_jobs: list[dict[str, Any]] = field(default_factory=list)
    xcom_jobs: dict[str, str] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)

    def play(self, token: str) -> None:
        started = time.monotonic()
        slow_start = {"kind": "drip", "action": "StartJobWithParams", "latency_ms": SLOW_START_MS_PER_BYTE}
        self.cluster.emulator_admin("/queue", {"faults": [slow_start] * len(scenario.STREAMING + scenario.BATCH)})
        self.run_id = trigger(self.cluster, token, scenario.DAG_ID)
        log(f"{scenario.DAG_ID}: {len(scenario.tasks())} tasks started together (run {self.run_id})")
        self.monitor = Monitor(self.cluster, self.run_id)
        self.monitor.start()
        try:
            self.kill_worker_mid_task()
            self.wait_until_all_wait()
            self.kill_triggerer()
            self.emulator_outage()
            self.throttle()
            self.finish_jobs()
            self.wait_until_done()
        finally:
            self.monitor.stop()
        log(f"scenario played in {time.monotonic() - started:.0f} s")

    # -- fault 1: a worker dies mid-task

    def kill_worker_mid_task(self) -> None:
        """SIGKILL the worker that runs a start-job task which has started its job and not yet deferred.

        The first StartJobWithParams answers are slowed (a few seconds, byte by byte) so that the kill
        finds a start in that window; failing that, the worker running a reschedule-mode poke dies.
        """
        assert self.monitor is not None
        deadline = time.monotonic() + WORKER_KILL_WINDOW
        while True:
            self.cluster.check_alive()
            seen = self.monitor.sample()
            running = {task_id: ti for task_id, ti in seen.items() if ti.state == "running" and ti.hostname}
            started = self._deployments_with_started_jobs()
            mid_start = [t for t in running if t.startswith("start_") and t.removeprefix("start_") in started]
            late = time.monotonic() > deadline
            poking = [t for t in running if t.startswith("reschedule_")] if late else []
            if mid_start or poking:
                break
            if late and time.monotonic() > deadline + WORKER_KILL_WINDOW:
                raise StepError(f"no start or reschedule-mode task ran within {2 * WORKER_KILL_WINDOW:.0f} s")
            time.sleep(0.2)
        hit = (mid_start or poking)[0]
        self.killed_worker = str(running[hit].hostname)
        self.cluster.kill(self.killed_worker)
        self.killed_worker_tasks = {t: ti.try_number for t, ti in running.items() if ti.hostname == self.killed_worker}
        self.worker_kill_reason = f"{hit} after it started its job" if mid_start else f"{hit} mid-poke"
        log(
            f"SIGKILLed {self.killed_worker} (process group) while it ran {sorted(self.killed_worker_tasks)}: "
            f"{self.worker_kill_reason}"
        )

    def _deployments_with_started_jobs(self) -> set[str]:
        held = {scenario.initial_job_id(name) for name in scenario.WATCHED}
        return {
            str(job["deploymentName"])
            for job in self.cluster.emulator_admin("/jobs")["jobs"]
            if job["jobId"] not in held
        }

    def wait_until_all_wait(self) -> None:
        """Every deferrable task deferred, and every reschedule-mode sensor poked at least once."""
        deferrable = {t.task_id for t in scenario.tasks() if t.kind in ("deferrable", "start")}
        reschedule = {t.task_id for t in scenario.tasks() if t.kind == "reschedule"}
        assert self.monitor is not None
        monitor = self.monitor

        def all_wait() -> bool:
            self.cluster.check_alive()
            seen = monitor.latest()
            deferred = {task_id for task_id, ti in seen.items() if ti.state == "deferred" and ti.triggerer}
            rows = self.cluster.query(
                "SELECT DISTINCT task_id FROM task_reschedule tr JOIN task_instance ti ON tr.ti_id = ti.id "
                "WHERE ti.dag_id = %s AND ti.run_id = %s",
                (scenario.DAG_ID, self.run_id),
            )
            return deferred >= deferrable and {row[0] for row in rows} >= reschedule

        wait_for(all_wait, timeout=WAITING_TIMEOUT, what="every sensor and start to wait", interval=2.0)
        self.waiting_since = time.time()
        log(f"all {len(deferrable)} deferrable tasks deferred, all {len(reschedule)} reschedule sensors poked")
        time.sleep(3 * scenario.POLL_INTERVAL)  # a few poll intervals with both triggerers, for the request figure

    # -- fault 2: a triggerer dies

    def kill_triggerer(self) -> None:
        assert self.monitor is not None
        seen = self.monitor.sample()
        by_triggerer = {name: {t: ti for t, ti in seen.items() if ti.triggerer == name} for name in TRIGGERERS}
        self.killed_triggerer = max(TRIGGERERS, key=lambda name: len(by_triggerer[name]))
        self.survivor = next(name for name in TRIGGERERS if name != self.killed_triggerer)
        held = by_triggerer[self.killed_triggerer]
        self.held_triggers = {task_id: ti.trigger_id for task_id, ti in held.items() if ti.trigger_id is not None}
        counts = {name: len(tasks) for name, tasks in by_triggerer.items()}
        self.trigger_split = counts
        early_deployment = self._early_deployment(held)
        self.cluster.kill(self.killed_triggerer)
        self.triggerer_kill_at = time.time()
        self.cluster.emulator_admin(f"/jobs/{scenario.initial_job_id(early_deployment)}/timeline", _RUNNING)
        log(
            f"SIGKILLed {self.killed_triggerer} holding {counts[self.killed_triggerer]} triggers "
            f"({self.survivor} held {counts[self.survivor]}); {early_deployment}'s job now RUNNING"
        )
        monitor = self.monitor

        def taken_over() -> bool:
            self.cluster.check_alive()
            latest = monitor.latest()
            moved = all(
                latest[t].trigger_id != trigger_id or latest[t].triggerer == self.survivor
                for t, trigger_id in self.held_triggers.items()
            )
            return moved and self._first_survivor_event() is not None

        wait_for(taken_over, timeout=TAKEOVER_TIMEOUT, what=f"{self.survivor} to take over the triggers")
        self.takeover_seconds = self._first_survivor_event()
        self.takeover_at = time.time()
        log(f"{self.survivor} took over; first event {self.takeover_seconds:.1f} s after the kill")
        time.sleep(3 * scenario.POLL_INTERVAL)  # a few poll intervals with one triggerer, for the request figure

    def _early_deployment(self, held: dict[str, TaskSeen]) -> str:
        """The watched deployment (not a failing one) with the most sensors on the triggerer to kill."""
        counts: dict[str, int] = {}
        for task_id in held:
            name = _deployment_of(task_id)
            if task_id.startswith("deferrable_") and name not in scenario.FAILING:
                counts[name] = counts.get(name, 0) + 1
        if not counts:
            raise StepError(f"no sensor of a watched deployment was on {self.killed_triggerer}")
        return max(counts, key=lambda name: counts[name])

    def _first_survivor_event(self) -> float | None:
        """Seconds from the kill until the survivor fired the first event of a trigger it took over: the
        earliest "Trigger fired event" in its trigger logs, or the first sample that shows such a task no
        longer deferred (a triggerer may not write that log line before the trigger is cleaned up)."""
        assert self.monitor is not None
        fired = [at for task_id, at in self._survivor_events().items() if task_id in self.held_triggers]
        fired += [
            at
            for at, seen in self.monitor.samples
            if at > self.triggerer_kill_at and any(seen[t].state != "deferred" for t in self.held_triggers)
        ][:1]
        return min(fired) - self.triggerer_kill_at if fired else None

    # -- fault 3: the API is down for 20 s

    def emulator_outage(self) -> None:
        self.outage_at = time.time()
        self._keep_request_counts()
        self.jobs_before_outage = self._job_statuses()
        self.cluster.stop("emulator")
        log(f"emulator stopped (state saved); down for {OUTAGE_SECONDS:.0f} s")
        time.sleep(OUTAGE_SECONDS)
        self.cluster.start_emulator(self.saved_state, self.saved_state, durations=_held_durations())
        self.jobs_after_outage = self._job_statuses()
        log(f"emulator back on {self.cluster.emulator_url} with {len(self.jobs_after_outage)} jobs")

    def _job_statuses(self) -> dict[str, str]:
        jobs = self.cluster.emulator_admin("/jobs")["jobs"]
        return {str(job["jobId"]): str(job["status"]["currentJobStatus"]) for job in jobs}

    def _keep_request_counts(self) -> None:
        """The emulator's requests per second so far (a restart starts its counts afresh)."""
        per_second = self.cluster.emulator_admin("/requests")["perSecond"]
        for second, count in per_second.items():
            self.request_seconds[int(second)] = self.request_seconds.get(int(second), 0) + count

    # -- fault 4: throttling

    def throttle(self) -> None:
        self.cluster.emulator_admin("/faults", {"throttle": THROTTLE_RATE})
        log(f"{THROTTLE_RATE:.0%} of API requests throttled for {THROTTLE_SECONDS:.0f} s")
        time.sleep(THROTTLE_SECONDS)
        self.cluster.check_alive()
        self.cluster.emulator_admin("/faults", {})
        log("throttling off")

    # -- the end

    def finish_jobs(self) -> None:
        for name in scenario.WATCHED:
            timeline = [["FAILED", None]] if name in scenario.FAILING else [["RUNNING", None]]
            self.cluster.emulator_admin(f"/jobs/{scenario.initial_job_id(name)}/timeline", {"timeline": timeline})
        held = {scenario.initial_job_id(name) for name in scenario.WATCHED}
        for job in self.cluster.emulator_admin("/jobs")["jobs"]:
            if job["jobId"] not in held:
                final = "FINISHED" if job["executionMode"] == "BATCH" else "RUNNING"
                self.cluster.emulator_admin(f"/jobs/{job['jobId']}/timeline", {"timeline": [[final, None]]})
        log(f"jobs moved to their final states ({', '.join(sorted(scenario.FAILING))} FAILED)")

    def wait_until_done(self) -> None:
        expected = len(scenario.tasks())

        def done() -> bool:
            self.cluster.check_alive()
            rows = self.cluster.query(
                "SELECT count(*) FROM task_instance WHERE dag_id = %s AND run_id = %s AND state = ANY(%s)",
                (scenario.DAG_ID, self.run_id, list(TERMINAL_STATES)),
            )
            return bool(rows[0][0] == expected)

        wait_for(done, timeout=FINISH_TIMEOUT, what="every task to end", interval=2.0)
        self._keep_request_counts()
        self.final_jobs = self.cluster.emulator_admin("/jobs")["jobs"]
        rows = self.cluster.query(
            "SELECT task_id, value FROM xcom WHERE dag_id = %s AND run_id = %s AND key = 'return_value'",
            (scenario.DAG_ID, self.run_id),
        )
        self.xcom_jobs = {task_id: _xcom_text(value) for task_id, value in rows}
        ends = self.cluster.query(
            "SELECT task_id, end_date FROM task_instance WHERE dag_id = %s AND run_id = %s AND state = 'success'",
            (scenario.DAG_ID, self.run_id),
        )
        self.end_dates = {task_id: end for task_id, end in ends}

    # -- checks and figures

    def checks(self, credentials: scenario.Credentials) -> list[Result]:
        assert self.monitor is not None
        final = self.monitor.sample()
        tasks = scenario.tasks()
        wrong = [
            f"{t.task_id} {final[t.task_id].state} (expected {t.expected})"
            for t in tasks
            if final[t.task_id].state != t.expected
        ]
        results = [
            Result("every task ends as expected", not wrong, _ratio(len(tasks) - len(wrong), len(tasks), wrong)),
            *self._job_checks(),
            self._worker_check(final),
            self._triggerer_check(final),
            Result(
                "the emulator came back on its port with the same jobs in the same states",
                bool(self.jobs_before_outage) and self.jobs_before_outage == self.jobs_after_outage,
                f"{len(self.jobs_before_outage)} jobs before the outage, {len(self.jobs_after_outage)} after, "
                f"{sum(self.jobs_after_outage.get(j) == s for j, s in self.jobs_before_outage.items())} alike",
            ),
        ]
        self._figures()
        return results

    def _job_checks(self) -> list[Result]:
        starts = [t for t in scenario.tasks() if t.kind == "start"]
        per_deployment = {t.deployment_name: 0 for t in starts}
        for job in self.final_jobs:
            if job["deploymentName"] in per_deployment:
                per_deployment[job["deploymentName"]] += 1
        extra = [f"{name}: {count} jobs" for name, count in per_deployment.items() if count != 1]
        owned = {self.xcom_jobs.get(t.task_id) for t in starts}
        held = {scenario.initial_job_id(name) for name in scenario.WATCHED}
        orphans = [
            job["jobId"]
            for job in self.final_jobs
            if job["jobId"] not in held | owned and job["status"]["currentJobStatus"] in ("STARTING", "RUNNING")
        ]
        return [
            Result(
                "one job started per start-job task (emulator)",
                not extra,
                _ratio(len(starts) - len(extra), len(starts), extra),
            ),
            Result("jobs left running that no task owns", not orphans, f"{len(orphans)} {orphans or ''}".strip()),
        ]

    def _worker_check(self, final: dict[str, TaskSeen]) -> Result:
        expected = {t.task_id: t.expected for t in scenario.tasks()}
        survivor = next(name for name in WORKERS if name != self.killed_worker)
        moved = [
            t
            for t, try_number in self.killed_worker_tasks.items()
            if final[t].hostname == survivor and final[t].try_number > try_number and final[t].state == expected[t]
        ]
        missing = sorted(set(self.killed_worker_tasks) - set(moved))
        return Result(
            f"tasks of the killed {self.killed_worker} ran again on {survivor} and ended as expected",
            bool(self.killed_worker_tasks) and not missing,
            f"{_ratio(len(moved), len(self.killed_worker_tasks), missing)}; hit {self.worker_kill_reason}",
        )

    def _triggerer_check(self, final: dict[str, TaskSeen]) -> Result:
        """Each trigger of the killed triggerer started on the survivor (its trigger log there) and its task
        ended as expected (resumed by that trigger's event, or failed by it)."""
        expected = {t.task_id: t.expected for t in scenario.tasks()}
        ran = self._survivor_trigger_logs()
        completed = [
            t for t in self.held_triggers if TRIGGER_STARTED.search(ran.get(t, "")) and final[t].state == expected[t]
        ]
        missing = sorted(set(self.held_triggers) - set(completed))
        return Result(
            f"triggers of the killed triggerer completed on {self.survivor}",
            bool(self.held_triggers) and not missing,
            _ratio(len(completed), len(self.held_triggers), missing),
        )

    def _survivor_trigger_logs(self) -> dict[str, str]:
        """Each task's trigger log written by the survivor (``attempt=N.log.trigger.<triggerer job id>.log``)."""
        rows = self.cluster.query(
            "SELECT id FROM job WHERE job_type = 'TriggererJob' AND hostname = %s", (self.survivor,)
        )
        suffixes = tuple(f".trigger.{row[0]}.log" for row in rows)
        return {
            path.parent.name.removeprefix("task_id="): path.read_text(encoding="utf-8", errors="replace")
            for path in (LOGS_DIR / "tasks").glob(f"dag_id={scenario.DAG_ID}/*/*/*.log.trigger.*.log")
            if path.name.endswith(suffixes)
        }

    def _survivor_events(self) -> dict[str, float]:
        """When the survivor fired each task's trigger (epoch seconds), from its trigger logs."""
        fired: dict[str, float] = {}
        for task_id, text in self._survivor_trigger_logs().items():
            for line in text.splitlines():
                if '"Trigger fired event"' in line:
                    at = datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00")).timestamp()
                    fired[task_id] = min(at, fired.get(task_id, at))
        return fired

    def _figures(self) -> None:
        self.figures.append(
            f"triggerer kill to the first event handled by {self.survivor}: {self.takeover_seconds:.1f} s "
            f"(health check threshold {TRIGGERER_HEALTH_CHECK_THRESHOLD} s)"
        )
        delays = self._delays(("deferrable", "start"))
        reschedule = self._delays(("reschedule",))
        self.figures.append(
            f"job state change (emulator clock) to task success, deferrable (triggerer) tasks: "
            f"p50 {_percentile(delays, 50):.1f} s, p95 {_percentile(delays, 95):.1f} s over {len(delays)} tasks "
            f"(poll interval {scenario.POLL_INTERVAL} s)"
        )
        self.figures.append(
            f"the same for reschedule-mode sensors: p50 {_percentile(reschedule, 50):.1f} s, "
            f"p95 {_percentile(reschedule, 95):.1f} s over {len(reschedule)} (poke interval {scenario.POKE_INTERVAL} s)"
        )
        split = " and ".join(f"{count}" for count in self.trigger_split.values())
        both = _peak_per_window(self.request_seconds, self.waiting_since, self.triggerer_kill_at)
        one = _peak_per_window(self.request_seconds, self.takeover_at, self.outage_at)
        self.figures.append(
            f"API requests per {scenario.POLL_INTERVAL} s poll interval at peak while every task waits: "
            f"{both} with two triggerers (holding {split} triggers), {one} with one "
            f"({len(self.held_triggers) + self.trigger_split.get(self.survivor, 0)} triggers on 10 deployments "
            f"and 10 jobs; reschedule pokes included)"
        )

    def _delays(self, kinds: Iterable[str]) -> list[float]:
        """Seconds from each job's last status change to the success of the tasks waiting on it."""
        since = {job["jobId"]: job["statusSince"] / 1000 for job in self.final_jobs}
        delays = []
        for task in scenario.tasks():
            end = self.end_dates.get(task.task_id)
            if task.kind not in kinds or end is None:
                continue
            job_id = (
                self.xcom_jobs.get(task.task_id)
                if task.kind == "start"
                else scenario.initial_job_id(task.deployment_name)
            )
            if job_id in since:
                delays.append(end.timestamp() - since[job_id])
        return delays

    def print_figures(self) -> None:
        for figure in self.figures:
            print(f"FIGURE  {figure}", flush=True)


_RUNNING = {"timeline": [["RUNNING", None]]}


def _deployment_of(task_id: str) -> str:
    return next(t.deployment_name for t in scenario.tasks() if t.task_id == task_id)


def _xcom_text(value: Any) -> str:
    return str(json.loads(value) if isinstance(value, str) and value.startswith('"') else value)


def _ratio(good: int, total: int, problems: list[str]) -> str:
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    return f"{good}/{total}" + (f" ({shown})" if problems else "")


def _percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _peak_per_window(per_second: dict[int, int], start: float, end: float) -> int:
    """The most requests in any :data:`scenario.POLL_INTERVAL` seconds between ``start`` and ``end``."""
    width = scenario.POLL_INTERVAL
    seconds = range(int(start), int(end) - width + 1)
    return max((sum(per_second.get(s + i, 0) for i in range(width)) for s in seconds), default=0)


def secrets_check(credentials: scenario.Credentials) -> Result:
    """No file under the logs folder holds the AccessKey secret or the STS token."""
    secrets = {"AccessKey secret": credentials.secret, "STS token": credentials.security_token}
    files = [path for path in LOGS_DIR.rglob("*") if path.is_file()]
    found = [
        f"{what} in {path.relative_to(LOGS_DIR)}"
        for path in files
        for what, secret in secrets.items()
        if secret.encode() in path.read_bytes()
    ]
    return Result(
        "the AccessKey secret and STS token appear in no log file",
        not found,
        f"{len(files)} files searched" + (f": {'; '.join(found[:5])}" if found else ""),
    )


if __name__ == "__main__":
    sys.exit(main())
