"""Pre-flight, pure: what a DAG author sets (``settings``), the statement that profiles the data
(``profile``) and the verdict on its figures, with the cost estimate (``verdict``).

Only ``settings`` is imported when a DAG file is parsed; the other two when a task runs.
"""

from airflow_cortex.preflight.settings import PreflightChecks

__all__ = ["PreflightChecks"]
