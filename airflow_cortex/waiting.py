"""Moved to :mod:`airflow_cortex.jobcontrol.waiting`; this import path keeps working."""

import sys

from airflow_cortex.jobcontrol import waiting as _moved

sys.modules[__name__] = _moved
