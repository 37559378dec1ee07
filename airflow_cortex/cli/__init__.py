"""Command-line tools: ``cortex-jobs`` (fine-tuning jobs on an Airflow connection)."""
