"""Provider metadata, found by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_cortex import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-cortex",
        "name": "Snowflake Cortex Fine-tuning",
        "description": "Run Snowflake Cortex fine-tuning (SNOWFLAKE.CORTEX.FINETUNE) from Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Snowflake Cortex Fine-tuning",
                "external-doc-url": "https://docs.snowflake.com/en/user-guide/snowflake-cortex/cortex-finetuning",
                "tags": ["service"],
            }
        ],
        "operators": [
            {
                "integration-name": "Snowflake Cortex Fine-tuning",
                "python-modules": ["airflow_cortex.operators.finetune"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Snowflake Cortex Fine-tuning",
                "python-modules": ["airflow_cortex.sensors.finetune"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Snowflake Cortex Fine-tuning",
                "python-modules": ["airflow_cortex.triggers.finetune"],
            }
        ],
        "extra-links": ["airflow_cortex.links.snowsight.CortexSnowsightLink"],
        "hooks": [
            {
                "integration-name": "Snowflake Cortex Fine-tuning",
                "python-modules": ["airflow_cortex.hooks.finetune"],
            }
        ],
    }
