"""``python -m airflow_cortex.testing`` runs the emulator's command line."""

from __future__ import annotations

import sys

from airflow_cortex.testing.cli import main

sys.exit(main())
