"""The test kit's DAG loader (``airflow_cortex.testing.dagruns.DagRunner``) with real Airflow
parsing: after the first load it parses only the file that holds the DAG, yet a test still sees
each file as it is now, every import error, and a DAG that moved to another file."""

from __future__ import annotations

import textwrap

import pytest

from airflow_cortex.testing.dagruns import DagImportError, DagRunner

pytestmark = pytest.mark.airflow


def _dag_file(folder, name: str, dag_id: str, tag: str = "first") -> None:
    (folder / name).write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime
            from airflow.providers.common.compat.sdk import DAG
            from airflow.providers.standard.operators.empty import EmptyOperator

            with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), tags=[{tag!r}]):
                EmptyOperator(task_id="only")
            """
        )
    )


@pytest.fixture
def folder(airflow_db, tmp_path):
    _dag_file(tmp_path, "one.py", "dag_one")
    _dag_file(tmp_path, "two.py", "dag_two")
    return tmp_path


def test_a_dag_is_read_as_its_file_is_now(folder):
    runner = DagRunner(folder)
    assert runner.get("dag_one").tags == {"first"}
    _dag_file(folder, "one.py", "dag_one", tag="edited")
    assert runner.get("dag_one").tags == {"edited"}


def test_an_import_error_names_every_broken_file(folder):
    runner = DagRunner(folder)
    runner.get("dag_one")
    # (Airflow's safe mode skips a file that names neither airflow nor a DAG.)
    (folder / "one.py").write_text("import airflow  # a DAG\nraise RuntimeError('broken one')\n")
    (folder / "two.py").write_text("import airflow  # a DAG\nraise RuntimeError('broken two')\n")
    with pytest.raises(DagImportError) as raised:
        runner.get("dag_one")
    assert "one.py" in str(raised.value)
    assert "broken two" in str(raised.value)


def test_a_dag_that_moved_to_another_file_is_found(folder):
    runner = DagRunner(folder)
    runner.get("dag_one")
    (folder / "one.py").unlink()
    _dag_file(folder, "three.py", "dag_one", tag="moved")
    assert runner.get("dag_one").tags == {"moved"}
    with pytest.raises(KeyError, match="No DAG 'dag_gone'"):
        runner.get("dag_gone")
