"""Check a built sdist and wheel: what the wheel holds, its metadata, its entry points.

``twine check`` validates the metadata's rendering only; this checks what a user's install gets:
the whole package (every module, ``py.typed``), the licence, one version everywhere, the entry
points Airflow, pytest and the shell look for, and nothing from the repository's tests,
benchmarks or scripts. Usage: ``python scripts/check_dist.py DIST_DIR``.
"""

from __future__ import annotations

import configparser
import email
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = {
    "apache_airflow_provider": {"provider_info": "airflow_cortex.provider_info:get_provider_info"},
    "pytest11": {"airflow_cortex": "airflow_cortex.testing.pytest_plugin"},
    "console_scripts": {
        "cortex-emulator": "airflow_cortex.emulator.cli:main",
        "cortex-jobs": "airflow_cortex.cli.jobs:main",
    },
}
FORBIDDEN_PREFIXES = ("tests/", "benchmarks/", "scripts/", "dags_examples/", ".ci/", "docs/")


def version() -> str:
    namespace: dict[str, str] = {}
    init = (ROOT / "airflow_cortex" / "__init__.py").read_text()
    line = next(line for line in init.splitlines() if line.startswith("__version__"))
    exec(line, namespace)  # noqa: S102 - one assignment line of our own source
    return namespace["__version__"]


def check_wheel(wheel: Path, expected_version: str) -> list[str]:
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"airflow_cortex-{expected_version}.dist-info"
        sources = {str(path.relative_to(ROOT)) for path in (ROOT / "airflow_cortex").rglob("*.py")}
        sources.add("airflow_cortex/py.typed")
        missing = sorted(sources - names)
        if missing:
            problems.append(f"wheel lacks package files: {missing}")
        stray = sorted(name for name in names if name.startswith(FORBIDDEN_PREFIXES) or "conftest" in name)
        if stray:
            problems.append(f"wheel holds files that are not the package: {stray}")
        if not any(name.startswith(f"{dist_info}/licenses/LICENSE") for name in names):
            problems.append("wheel holds no LICENSE")
        metadata = email.message_from_bytes(archive.read(f"{dist_info}/METADATA"))
        if metadata["Version"] != expected_version:
            problems.append(
                f"wheel version {metadata['Version']} != airflow_cortex.__version__ {expected_version}"
            )
        if metadata["License-Expression"] != "Apache-2.0":
            problems.append(f"License-Expression is {metadata['License-Expression']!r}, not 'Apache-2.0'")
        if not metadata.get_all("Project-URL"):
            problems.append("no Project-URL in the metadata")
        parser = configparser.ConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(archive.read(f"{dist_info}/entry_points.txt").decode())
        for group, entries in ENTRY_POINTS.items():
            for name, target in entries.items():
                found = parser.get(group, name, fallback=None)
                if found != target:
                    problems.append(f"entry point [{group}] {name} is {found!r}, expected {target!r}")
    return problems


def check_sdist(sdist: Path, expected_version: str) -> list[str]:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    required = {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "airflow_cortex/__init__.py"}
    missing = sorted(required - names)
    problems = [f"sdist lacks {missing}"] if missing else []
    if f"airflow_cortex-{expected_version}" not in sdist.name:
        problems.append(f"sdist {sdist.name} is not version {expected_version}")
    return problems


def main(dist: Path) -> int:
    expected = version()
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}", file=sys.stderr)
        return 1
    problems = check_wheel(wheels[0], expected) + check_sdist(sdists[0], expected)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: {wheels[0].name} and {sdists[0].name} (version {expected})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
