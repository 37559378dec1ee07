"""A local emulator of Snowflake Cortex fine-tuning, for running and testing DAGs offline.

It emulates the *job lifecycle* of ``SNOWFLAKE.CORTEX.FINETUNE`` behind a real
Snowflake-protocol server and trains nothing. See :class:`CortexEmulator`. Needs the
``emulator`` extra: ``pip install 'airflow-cortex[emulator]'``.

The names below are imported on first use, not with the package: pytest loads this package's
plugin before any test's ``conftest.py`` has set up ``AIRFLOW_HOME``, so importing the server
(and through it Airflow and the emulator's extra) here would configure Airflow too early, and
fail for anyone without the extra.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CortexEmulator": "airflow_cortex.testing.server",
    "CortexEngine": "airflow_cortex.testing.engine",
    "EmulatedJob": "airflow_cortex.testing.engine",
    "ManualClock": "airflow_cortex.testing.engine",
    "ScriptedOutcome": "airflow_cortex.testing.engine",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
