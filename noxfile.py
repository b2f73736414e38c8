"""The test suite on every supported Airflow release, installed the way users install it: ``nox`` (``make versions``).

Each ``airflow`` leg stands for one Airflow release as a managed service would install this provider:

1. ``uv pip compile --exclude-newer <release day>`` on ``apache-airflow==X.Y.Z`` (Python 3.11) resolves what
   that release's constraints file would have pinned;
2. those pins minus the ``apache-airflow-providers-*`` ones are the constraints (Airflow's
   "constraints-no-providers" model: providers, common-compat included, are upgraded on an older Airflow);
3. this provider's wheel (built, not editable) is installed with its ``test`` extra under those constraints
   from today's index, and pytest runs the unit, emulator and DAG-level suites from the source tree against it.

The ``lowest`` leg installs the wheel with ``--resolution lowest-direct`` and each runtime floor as a
constraint: the lowest version that pyproject.toml declares of every direct dependency (Airflow,
common-compat, requests, httpx, tenacity and the test tools), so a floor that is too low fails there.

The test tools (pytest, its plugins, ruff, mypy) are installed in the same step as Airflow, under the
same constraints: none of them is pinned by an Airflow constraints file and the ones they share
(``packaging``, ``pluggy``...) resolve within the pins, so no second, unconstrained step is needed.

Every leg prints the versions it ran with first. ``nox -s "airflow(3.3.2)"`` runs one leg; arguments after
``--`` go to pytest (``nox -s lowest -- -k sensor``); ``nox -l`` lists the legs.
"""

from __future__ import annotations

import os
import shutil
import tomllib

import nox
from packaging.requirements import Requirement

PYTHON = "3.11"
#: One leg per release: the release and the day after it was published on PyPI, the date up to which
#: its dependencies are resolved (``pip index versions --pre apache-airflow`` lists the releases).
AIRFLOW_RELEASES = {
    "3.0.6": "2025-08-30",
    "3.1.8": "2026-03-12",
    "3.2.2": "2026-05-30",
    "3.3.0": "2026-07-07",
    "3.3.2": "2026-09-18",
    "3.4.0b2": "2026-10-21",
}
#: The distributions whose versions each leg's log names.
REPORTED = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "apache-airflow-providers-common-compat",
    "tenacity",
    "httpx",
    "requests",
    "airflow-provider-flink-vvp",
)

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["airflow", "lowest"]


@nox.session(python=PYTHON)
@nox.parametrize("airflow", list(AIRFLOW_RELEASES), ids=list(AIRFLOW_RELEASES))
def airflow(session: nox.Session, airflow: str) -> None:
    """pytest on one Airflow release, its core dependencies pinned as of its release day."""
    requirement = os.path.join(session.create_tmp(), "airflow.in")
    with open(requirement, "w") as file:
        file.write(f"apache-airflow=={airflow}\n")
    pins = session.run_install(
        "uv",
        "pip",
        "compile",
        "--quiet",
        "--no-header",
        "--no-annotate",
        "--python-version",
        PYTHON,
        "--exclude-newer",
        AIRFLOW_RELEASES[airflow],
        "--prerelease",
        "if-necessary-or-explicit",
        requirement,
        silent=True,
    )
    if pins is None:  # ``nox -R`` skips installs: the leg's environment is reused as it was installed
        _test(session)
        return
    constraints = os.path.join(session.create_tmp(), "constraints.txt")
    with open(constraints, "w") as file:
        file.writelines(f"{line}\n" for line in pins.splitlines() if not line.startswith("apache-airflow-providers-"))
    session.install("--constraint", constraints, *_wheel(session))
    _test(session)


@nox.session(python=PYTHON)
def lowest(session: nox.Session) -> None:
    """pytest with the lowest declared version of every direct dependency."""
    # uv lowers only the requirements it is given, not a wheel's own: so pyproject.toml's, with the wheel.
    # It leaves Airflow's own provider dependencies at their newest, whose common-compat floor is higher
    # than ours: the floors are constraints too, so that an uninstallable floor fails here.
    floors = os.path.join(session.create_tmp(), "floors.txt")
    with open(floors, "w") as file:
        file.writelines(f"{name}=={floor}.*\n" for name, floor in _declared_floors())
    session.install(
        "--resolution",
        "lowest-direct",
        "--constraint",
        floors,
        "-r",
        "pyproject.toml",
        "--extra",
        "test",
        *_wheel(session),
    )
    _test(session)


def _declared_floors() -> list[tuple[str, str]]:
    """Each runtime dependency of pyproject.toml and its ``>=`` version."""
    with open("pyproject.toml", "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    floors = []
    for requirement in map(Requirement, dependencies):
        (floor,) = (spec.version for spec in requirement.specifier if spec.operator == ">=")
        floors.append((requirement.name, floor))
    return floors


def _wheel(session: nox.Session) -> tuple[str, ...]:
    """This provider's wheel with its ``test`` extra, built into the session's temporary directory, as
    ``uv pip install`` arguments: reinstalled, since a reused environment has a wheel of the same version."""
    wheels = os.path.abspath(os.path.join(session.create_tmp(), "dist"))
    shutil.rmtree(wheels, ignore_errors=True)
    session.run_install("uv", "build", "--quiet", "--wheel", "--out-dir", wheels)
    (wheel,) = (name for name in os.listdir(wheels) if name.endswith(".whl"))
    return (
        "--reinstall-package",
        "airflow-provider-flink-vvp",
        f"airflow-provider-flink-vvp[test] @ file://{wheels}/{wheel}",
    )


def _test(session: nox.Session) -> None:
    # What the leg runs with, and proof that the installed wheel (not the source tree) is under test.
    session.run(
        "python",
        "-c",
        "import importlib.metadata, airflow_provider_flink_vvp\n"
        f"for name in {REPORTED!r}:\n    print(name, importlib.metadata.version(name))\n"
        "print('provider from', airflow_provider_flink_vvp.__file__)",
        env={"PYTHONSAFEPATH": "1"},
    )
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)
