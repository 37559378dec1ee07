"""A local emulator of Snowflake Cortex fine-tuning, for running and testing DAGs offline.

It emulates the *job lifecycle* of ``SNOWFLAKE.CORTEX.FINETUNE`` behind a real
Snowflake-protocol server and trains nothing. See :class:`CortexEmulator`. Needs the
``emulator`` extra: ``pip install 'airflow-cortex[emulator]'``.
"""

from __future__ import annotations

from airflow_cortex.testing.engine import CortexEngine, EmulatedJob, ManualClock, ScriptedOutcome
from airflow_cortex.testing.server import CortexEmulator

__all__ = ["CortexEmulator", "CortexEngine", "EmulatedJob", "ManualClock", "ScriptedOutcome"]
