"""Sphinx configuration of the documentation site (``make docs``).

autodoc imports the installed package for real (``make docs`` installs it with its ``docs`` extra), so the
API reference is what users import. Pages are Markdown (MyST); the README's sections and the example DAGs'
tasks are included from their files through markers, never copied.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path

# autodoc imports Airflow: it must not write an airflow.cfg or a DB into the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="flink-vvp-docs-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_flink_vvp import __version__  # after AIRFLOW_HOME is set

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY: str = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["flink-vvp"][
    "repository"
]

project = "airflow-provider-flink-vvp"
author = "The airflow-provider-flink-vvp maintainers"
copyright = "2026, The airflow-provider-flink-vvp maintainers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.extlinks",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_api/*.tmp", "screenshots"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# {repo}`example_dags/x.py` links a file of the repository.
extlinks = {"repo": (f"{REPOSITORY}/blob/main/%s", "%s")}

autosummary_generate = True
# Each object is documented once, in the module that defines it: a package's re-exports (its __all__) are not
# documented again, which would make every reference to them ambiguous.
autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
    "ignore-module-all": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "description"

html_theme = "furo"
html_title = f"Flink VVP provider {release}"
html_theme_options = {"source_repository": f"{REPOSITORY}/", "source_branch": "main", "source_directory": "docs/"}
html_static_path: list[str] = []

# Every cross-reference must resolve (sphinx-build -n -W), except to names documented elsewhere: this machine
# reaches no documentation host, so no intersphinx inventory of Python's standard library, Airflow, httpx,
# requests, tenacity, urllib3 or OpenLineage is loaded, and their names cannot be linked. Those packages only.
nitpick_ignore = [
    # Airflow's names as the modules import them (from airflow.providers.common.compat.sdk), which the
    # signatures show unqualified.
    ("py:class", "BaseOperator"),
    ("py:class", "Context"),
    ("py:class", "PokeReturnValue"),
    ("py:class", "TaskInstanceKey"),
    # The standard library's, as annotated (from datetime import timedelta).
    ("py:class", "timedelta"),
]
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(airflow|httpx|requests|tenacity|urllib3|pendulum|sqlalchemy|asgiref|openlineage)(\..+)?",
    ),
    (
        r"py:.*",
        r"(abc|argparse|asyncio|collections|concurrent|contextlib|dataclasses|datetime|email|enum|http|io|json|"
        r"logging|pathlib|random|re|socket|socketserver|ssl|threading|types|typing|urllib|collections\.abc)\..+",
    ),
    # The modules' type variables, which autodoc does not document.
    (r"py:.*", r"airflow_provider_flink_vvp\.(.+\.)?T"),
]


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Show a class's nearest public bases: a private base (``_PollingTrigger``) has no page to link to."""
    public: list[type] = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if base.__name__.startswith("_"):
            pending[:0] = list(base.__bases__)
        elif base not in public:
            public.append(base)
    bases[:] = public


def setup(app: object) -> None:
    app.connect("autodoc-process-bases", _public_bases)  # type: ignore[attr-defined]
