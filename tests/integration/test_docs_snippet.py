"""The testing snippet of ``docs/emulator.md`` runs as written, in a project of its own.

A user copies the page's four files (pytest settings, a DAG mixing stock SQL tasks with the
operator, a CSV fixture, a test) into an empty project and runs pytest. This does exactly that, with no
``conftest.py`` of ours in reach, so the package's plugin alone has to provide the throwaway
Airflow, the DAG loading and the emulator that stock operators reach over TLS.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.airflow

_SNIPPET = re.compile(r"<!-- snippet: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.DOTALL)


def snippets() -> dict[str, str]:
    page = (REPO / "docs" / "emulator.md").read_text()
    return {match["path"]: match["body"] + "\n" for match in _SNIPPET.finditer(page)}


def test_the_page_holds_a_whole_project():
    assert set(snippets()) == {
        "pyproject.toml",
        "dags/support_bot.py",
        "tests/tickets.csv",
        "tests/test_support_bot.py",
    }


@pytest.mark.slow
def test_the_docs_snippet_runs_verbatim_with_stock_sql_tasks(tmp_path):
    for path, body in snippets().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    # A user's shell: none of this suite's Airflow settings, so the plugin must set its own.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "CORTEX_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "1 passed" in output, output[-3000:]
