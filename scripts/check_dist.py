"""Check what ``make dist`` built: the sdist's and wheel's contents, and the wheel installed alone in a fresh venv.

    python scripts/check_dist.py --dist dist --venv build/dist-venv

The venv must hold the wheel and what it depends on, nothing from the source tree. Airflow runs there with a
throwaway AIRFLOW_HOME; ``airflow providers list|hooks|links|triggers`` must show this provider's entries: its
distribution and version, the flink_vvp connection type with FlinkVVPHook, the deployment link, and the triggers
module, whose trigger classes must be the ones the source tree defines. Prints one PASS or FAIL line per check
and exits 1 when any failed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from airflow_provider_flink_vvp import __version__ as version

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "airflow_provider_flink_vvp"
DISTRIBUTION = "airflow-provider-flink-vvp"
HOOK = f"{PACKAGE}.hooks.vvp.FlinkVVPHook"
LINK = f"{PACKAGE}.links.vvp.FlinkVVPDeploymentLink"
#: What the sdist holds besides the package and the egg-info setuptools writes: what builds the wheel, the
#: licence, the notice and the changelog; no tests (the suite needs the whole repository).
SDIST_FILES = {
    "PKG-INFO",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "NOTICE",
    "CHANGELOG.md",
}


def package_files() -> set[str]:
    """The package's files in the source tree, as the sdist and the wheel must carry them."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in {".py", ".typed"}
    }


def trigger_modules() -> list[str]:
    """The trigger modules the provider info registers."""
    from airflow_provider_flink_vvp.get_provider_info import get_provider_info

    return [module for entry in get_provider_info()["triggers"] for module in entry["python-modules"]]


def trigger_classes_in_source(module: str) -> set[str]:
    """The public classes of ``module`` whose base is a trigger class (its name ends in ``Trigger``)."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and not node.name.startswith("_")
        and any(ast.unparse(base).endswith("Trigger") for base in node.bases)
    }


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, name: str, test: Callable[[], str | None]) -> None:
        """Run one check: ``test`` returns None when it holds, else what is wrong."""
        try:
            problem = test()
        except Exception as error:  # a check that cannot run fails, with its reason
            problem = f"{type(error).__name__}: {error}"
        if problem is None:
            print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {problem}")


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        raise RuntimeError(f"expected one {pattern} in {dist}, found {[p.name for p in found]}")
    return found[0]


def _difference(actual: set[str], expected: set[str]) -> str | None:
    if actual == expected:
        return None
    return f"unexpected {sorted(actual - expected)}, missing {sorted(expected - actual)}"


def check_sdist(sdist: Path) -> str | None:
    with tarfile.open(sdist) as archive:
        names = {member.name.split("/", 1)[1] for member in archive.getmembers() if member.isfile()}
    egg_info = {name for name in names if name.startswith(f"{PACKAGE}.egg-info/")}
    return _difference(names - egg_info, SDIST_FILES | package_files())


def check_wheel(wheel: Path, version: str) -> str | None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        licence = archive.read(f"{PACKAGE}-{version}.dist-info/licenses/LICENSE").decode()
    dist_info = f"{PACKAGE}-{version}.dist-info/"
    expected_meta = {f"{dist_info}{name}" for name in ("METADATA", "WHEEL", "RECORD", "entry_points.txt")}
    expected_meta |= {f"{dist_info}top_level.txt", f"{dist_info}licenses/LICENSE", f"{dist_info}licenses/NOTICE"}
    if licence != (ROOT / "LICENSE").read_text(encoding="utf-8"):
        return "the wheel's LICENSE differs from the repository's"
    return _difference(names, package_files() | expected_meta)


class WheelVenv:
    """Airflow's CLI and Python in the venv holding the wheel, run outside the source tree."""

    def __init__(self, venv: Path, home: Path) -> None:
        self.root = venv
        self.bin = venv / "bin"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": "",
        }
        self.cwd = home

    def _run(self, *command: str) -> str:
        done = subprocess.run(  # noqa: S603 - the venv's own programs, with fixed arguments
            command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[-3:])} exited {done.returncode}: {done.stderr.strip()[-800:]}")
        return done.stdout

    def providers(self, command: str) -> list[dict[str, str]]:
        output = self._run(str(self.bin / "airflow"), "providers", command, "--output", "json")
        entries: list[dict[str, str]] = json.loads(output[output.index("[") :])
        return entries

    def python(self, code: str) -> str:
        return self._run(str(self.bin / "python"), "-c", code).strip()


def _installed_from_the_wheel(venv: WheelVenv) -> str | None:
    location = Path(venv.python(f"import {PACKAGE}; print({PACKAGE}.__file__)")).resolve()
    if "site-packages" not in location.parts or not location.is_relative_to(venv.root):
        return f"{PACKAGE} is imported from {location}, not from the venv's site-packages"
    return None


def _listed(entries: list[dict[str, str]], expected: dict[str, str], what: str) -> str | None:
    for entry in entries:
        if all(entry.get(key) == value for key, value in expected.items()):
            return None
    return f"no {what} entry with {expected} among {len(entries)}: {entries}"


def _trigger_classes(venv: WheelVenv, triggers: list[dict[str, str]], module: str) -> str | None:
    problem = _listed(triggers, {"package_name": DISTRIBUTION, "class": module}, "providers triggers")
    if problem:
        return problem
    installed = venv.python(
        "import inspect, json; from airflow.triggers.base import BaseTrigger; "
        f"import {module} as module; "
        "print(json.dumps(sorted(name for name, value in vars(module).items() if not name.startswith('_') "
        "and inspect.isclass(value) and issubclass(value, BaseTrigger) and value.__module__ == module.__name__)))"
    )
    return _difference(set(json.loads(installed)), trigger_classes_in_source(module))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, required=True, help="the folder uv build wrote")
    parser.add_argument("--venv", type=Path, required=True, help="a venv with the wheel installed alone")
    args = parser.parse_args()

    checks = Checks()
    try:
        sdist = _one(args.dist, f"{PACKAGE}-{version}.tar.gz")
        wheel = _one(args.dist, f"{PACKAGE}-{version}-py3-none-any.whl")
    except RuntimeError as error:
        print(f"FAIL {error}")
        return 1
    checks.check(
        f"sdist {sdist.name}: the package, build files, LICENSE, NOTICE, CHANGELOG; no tests",
        lambda: check_sdist(sdist),
    )
    checks.check(
        f"wheel {wheel.name}: the package, LICENSE and NOTICE in dist-info", lambda: check_wheel(wheel, version)
    )

    with tempfile.TemporaryDirectory(prefix="flink-vvp-dist-") as home:
        venv = WheelVenv(args.venv.resolve(), Path(home))
        checks.check("the wheel's venv imports the package from site-packages", lambda: _installed_from_the_wheel(venv))
        checks.check(
            f"airflow providers list: {DISTRIBUTION} {version}",
            lambda: _listed(venv.providers("list"), {"package_name": DISTRIBUTION, "version": version}, "list"),
        )
        hook = {"connection_type": "flink_vvp", "class": HOOK, "package_name": DISTRIBUTION}
        checks.check(
            "airflow providers hooks: flink_vvp -> FlinkVVPHook",
            lambda: _listed(venv.providers("hooks"), hook, "hooks"),
        )
        checks.check(
            "airflow providers links: FlinkVVPDeploymentLink",
            lambda: _listed(venv.providers("links"), {"extra_link_class_name": LINK}, "links"),
        )
        listed_triggers = venv.providers("triggers")
        for module in trigger_modules():
            checks.check(
                f"airflow providers triggers: {module} with {', '.join(sorted(trigger_classes_in_source(module)))}",
                lambda module=module: _trigger_classes(venv, listed_triggers, module),
            )
    print(f"{'FAIL' if checks.failed else 'PASS'}: make dist ({checks.failed} failed)")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
