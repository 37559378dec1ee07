"""The Airflow test kit: pytest fixtures that run whole DAGs offline against the local Cortex
emulator (:mod:`airflow_cortex.emulator`), a throwaway Airflow home, and DAG-run helpers.

The emulator's names are exported here too (:class:`CortexEmulator`, ...), as a test imports
them. Needs the ``emulator`` extra: ``pip install 'airflow-cortex[emulator]'``.

The names below are imported on first use, not with the package: pytest loads this package's
plugin before any test's ``conftest.py`` has set up ``AIRFLOW_HOME``, so importing the server
(and through it Airflow and the emulator's extra) here would configure Airflow too early, and
fail for anyone without the extra.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CortexEmulator": "airflow_cortex.emulator.server",
    "CortexEngine": "airflow_cortex.emulator.engine",
    "EmulatedJob": "airflow_cortex.emulator.jobs",
    "EmulatorProcess": "airflow_cortex.emulator.process",
    "ManualClock": "airflow_cortex.emulator.jobs",
    "ScriptedOutcome": "airflow_cortex.emulator.jobs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
