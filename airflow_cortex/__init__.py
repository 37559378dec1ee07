"""Apache Airflow provider for Snowflake Cortex fine-tuning.

Importing the package is cheap and does no I/O: the hook and operator live in their own
modules (``airflow_cortex.hooks.finetune``, ``airflow_cortex.operators.finetune``).
"""

from __future__ import annotations

__version__ = "0.1.0"
