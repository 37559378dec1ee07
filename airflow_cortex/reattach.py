"""Moved to :mod:`airflow_cortex.jobcontrol.reattach`; this import path keeps working."""

import sys

from airflow_cortex.jobcontrol import reattach as _moved

sys.modules[__name__] = _moved
