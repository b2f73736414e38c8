"""The test suite on the oldest Airflow we support and on the latest release: ``nox`` (or ``make versions``).

Each session is a uv virtual environment with one pinned ``apache-airflow`` and ``.[test]``, resolved
together. ``nox -s "tests(floor)"`` or ``nox -s "tests(latest)"`` runs one of them; arguments after
``--`` go to pytest (``nox -- -k sensor``). To try another floor: ``NOX_AIRFLOW_FLOOR=3.2.2 nox -s "tests(floor)"``;
``UV_EXCLUDE_NEWER=<date>`` resolves the other packages as of a release date, as Airflow's constraints would.
"""

from __future__ import annotations

import os

import nox

#: The oldest release pyproject.toml admits (keep both in step). Below 3.3.0 the sensor's
#: ``task_state_store`` and, below 3.2, the declarative connection form are missing.
AIRFLOW_FLOOR = os.environ.get("NOX_AIRFLOW_FLOOR", "3.3.0")
#: The newest release on PyPI when this was written (``pip index versions apache-airflow``).
AIRFLOW_LATEST = "3.3.2"
PYTHON = "3.11"

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests"]


@nox.session(python=PYTHON)
@nox.parametrize("airflow", [nox.param(AIRFLOW_FLOOR, id="floor"), nox.param(AIRFLOW_LATEST, id="latest")])
def tests(session: nox.Session, airflow: str) -> None:
    """pytest against one ``apache-airflow`` release."""
    # One resolution for both, so uv cannot satisfy .[test] by moving Airflow off the pin.
    session.install(f"apache-airflow=={airflow}", "-e", ".[test]")
    session.run("python", "-c", "import airflow; print('Airflow', airflow.__version__)")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)
