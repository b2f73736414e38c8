"""The package as the index shows it: metadata of the installed distribution, one version, one repository URL.

The build itself (sdist and wheel contents, twine, the wheel installed alone) is checked by ``make dist``.
"""

from __future__ import annotations

import ast
import email.parser
import importlib.util
import re
import tomllib
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType

import pytest

import airflow_provider_flink_vvp
from airflow_provider_flink_vvp.get_provider_info import get_provider_info

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY = PYPROJECT["tool"]["flink-vvp"]["repository"]


#: Parsed here from the METADATA file, as the index reads it: the parsed form importlib.metadata returns had lost
#: the README's body (its payload) once Airflow's modules were loaded by earlier tests.
METADATA = email.parser.Parser().parsestr(distribution("airflow-provider-flink-vvp").read_text("METADATA") or "")
#: A Markdown link or image target.
LINK_TARGET = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _setup_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("provider_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its setup() runs only as __main__, as the build backend runs it
    return module


def test_the_version_has_one_source() -> None:
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "airflow_provider_flink_vvp.__version__"}
    installed = METADATA["Version"]
    assert installed == airflow_provider_flink_vvp.__version__
    assert get_provider_info()["versions"] == [installed]


def test_the_version_is_read_without_importing_anything() -> None:
    # setuptools reads the attribute from the module's syntax tree when the module is plain assignments: the
    # build then imports neither the package nor Airflow.
    tree = ast.parse((ROOT / "airflow_provider_flink_vvp" / "__init__.py").read_text(encoding="utf-8"))
    kinds = {type(node) for node in tree.body}
    assert kinds <= {ast.Expr, ast.Assign}, kinds
    assert not any(isinstance(node, ast.Import | ast.ImportFrom) for node in ast.walk(tree))


def test_the_licence_is_apache_2_and_shipped() -> None:
    assert METADATA["License-Expression"] == "Apache-2.0"
    assert set(METADATA.get_all("License-File") or []) == {"LICENSE", "NOTICE"}
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    installed = distribution("airflow-provider-flink-vvp")
    assert installed.read_text("licenses/LICENSE") == licence
    assert installed.read_text("licenses/NOTICE") == (ROOT / "NOTICE").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "classifier",
    [
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        "Development Status :: 4 - Beta",
        "Typing :: Typed",
    ],
)
def test_classifiers(classifier: str) -> None:
    assert classifier in (METADATA.get_all("Classifier") or [])


def test_the_python_classifiers_are_the_versions_tested() -> None:
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    tested = set(re.findall(r'^PYTHON = "(3\.\d+)"$', noxfile, re.MULTILINE))
    classified = {
        c.rsplit(" :: ", 1)[1]
        for c in METADATA.get_all("Classifier") or []
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert tested and classified == tested
    assert METADATA["Requires-Python"] == f">={min(tested)}"


@pytest.mark.parametrize("keyword", ["airflow-provider", "flink", "alibaba-cloud", "ververica"])
def test_keywords(keyword: str) -> None:
    assert keyword in METADATA["Keywords"].split(",")


def test_authors_are_the_maintainers() -> None:
    assert METADATA["Author"] == METADATA["Maintainer"] == "The airflow-provider-flink-vvp maintainers"


def test_every_project_url_derives_from_the_repository() -> None:
    urls = dict(entry.split(", ", 1) for entry in METADATA.get_all("Project-URL") or [])
    assert urls == {
        "Source": REPOSITORY,
        "Documentation": f"{REPOSITORY}/tree/main/docs",
        "Changelog": f"{REPOSITORY}/blob/main/CHANGELOG.md",
        "Issue tracker": f"{REPOSITORY}/issues",
    }


def test_the_index_readme_has_no_relative_link() -> None:
    description = METADATA.get_payload()
    assert isinstance(description, str)
    assert METADATA["Description-Content-Type"] == "text/markdown"
    assert description.startswith("# airflow-provider-flink-vvp")
    targets = LINK_TARGET.findall(description)
    readme_targets = LINK_TARGET.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(targets) == len(readme_targets) > 0
    for readme_target, target in zip(readme_targets, targets, strict=True):
        if "://" in readme_target:
            assert target == readme_target
        else:
            assert target.startswith(REPOSITORY), target


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("![form](docs/screenshots/01.png)", "![form](<repo>/raw/main/docs/screenshots/01.png)"),
        ("![x](./docs/a.png)", "![x](<repo>/raw/main/docs/a.png)"),
        (
            "see [the DAG](example_dags/example_flink_vvp.py).",
            "see [the DAG](<repo>/blob/main/example_dags/example_flink_vvp.py).",
        ),
        ("[Supported versions](#supported-versions)", "[Supported versions](<repo>#supported-versions)"),
        ("[CHANGELOG](CHANGELOG.md#010)", "[CHANGELOG](<repo>/blob/main/CHANGELOG.md#010)"),
        ("[Airflow](https://airflow.apache.org/)", "[Airflow](https://airflow.apache.org/)"),
        ("![badge](https://img.example/b.svg)", "![badge](https://img.example/b.svg)"),
        ("[mail](mailto:a@b)", "[mail](mailto:a@b)"),
        ("`[not](a link)` has a space", "`[not](a link)` has a space"),
        ("[a](one.md) and ![b](two.png)", "[a](<repo>/blob/main/one.md) and ![b](<repo>/raw/main/two.png)"),
        ("no links at all", "no links at all"),
    ],
)
def test_relative_links_become_absolute(markdown: str, expected: str) -> None:
    setup = _setup_module()
    assert setup.REPOSITORY == REPOSITORY
    assert setup.absolute_links(markdown) == expected.replace("<repo>", REPOSITORY)


def _text_files() -> list[Path]:
    docs = [path for path in (ROOT / "docs").rglob("*") if path.suffix in {".md", ".py", ".json"}]
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "CONTRIBUTING.md", ROOT / "setup.py", *docs]


@pytest.mark.parametrize("path", _text_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_the_repository_url_is_stated_once(path: Path) -> None:
    # Only pyproject.toml names it; setup.py and docs/conf.py read it from there.
    assert REPOSITORY not in path.read_text(encoding="utf-8")


def test_the_changelog_has_this_release() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog.startswith("# Changelog\n")
    assert f"\n## {airflow_provider_flink_vvp.__version__} " in changelog
