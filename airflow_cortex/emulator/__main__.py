"""``python -m airflow_cortex.emulator`` runs the emulator's command line."""

from __future__ import annotations

import sys

from airflow_cortex.emulator.cli import main

sys.exit(main())
