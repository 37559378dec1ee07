"""``bounded``: the reads a killed try makes answer within their bound or not at all.

``on_kill`` runs in a signal handler with Airflow's SIGKILL a few seconds behind, so a read that
hangs (the interrupted code may hold the lock of the channel to the supervisor) must not hold
the kill. The integration tests of a kill lift the bound so that a loaded machine cannot fail
them; these tests hold the bound itself.
"""

from __future__ import annotations

import threading

from airflow_cortex.jobcontrol.ownership import UNKNOWN
from airflow_cortex.utils.task_instance import bounded


def test_a_read_that_answers_in_time_gives_its_answer():
    assert bounded(lambda: "running", 10.0) == "running"
    assert bounded(lambda: None, 10.0) is None


def test_a_read_that_fails_is_unknown():
    def broken() -> str:
        raise ConnectionError("supervisor channel closed")

    assert bounded(broken, 10.0) == UNKNOWN


def test_a_read_that_hangs_is_unknown_once_its_bound_passes():
    release = threading.Event()
    started = threading.Event()
    returned = threading.Event()

    def hanging() -> str:
        started.set()
        release.wait(30.0)
        returned.set()
        return "late"

    try:
        # Waiting for the read would give "late" after 30 s; the bound gives up after 0.05 s.
        assert bounded(hanging, 0.05) == UNKNOWN
        assert not returned.is_set()
        assert started.wait(5.0)  # the read did run (on a loaded machine it may start late)
    finally:
        release.set()
