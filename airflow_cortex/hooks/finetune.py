"""I/O for Cortex fine-tuning: the only place that talks to Snowflake."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from typing import TYPE_CHECKING, Any

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

from airflow_cortex.exceptions import CortexFineTuneError
from airflow_cortex.results import FineTuneJob, FineTuneJobSummary, parse_show
from airflow_cortex.statements import (
    build_finetune_request,
    cancel_statement,
    create_statement,
    describe_statement,
    show_statement,
)

if TYPE_CHECKING:
    from snowflake.connector import SnowflakeConnection

_PROTOCOLS = ("https", "http")


class CortexFineTuneHook(SnowflakeHook):
    """Create, describe, list and cancel ``SNOWFLAKE.CORTEX.FINETUNE`` jobs.

    Built on the Snowflake provider's hook so every authentication method of a ``snowflake``
    connection works unchanged. Each call validates its input before opening a connection and
    runs exactly one statement (``MULTI_STATEMENT_COUNT`` is pinned to 1 for it), so no input can
    make Snowflake run a second one.

    Beyond the stock hook it honours ``protocol`` in the connection extras (with ``host`` and
    ``port``), which the stock hook drops; that is what lets a connection point at the local
    Cortex emulator (``"protocol": "http"``) or at a TLS-terminating proxy.
    """

    hook_name = "Snowflake Cortex Fine-tuning"

    def __init__(self, *args: Any, allow_unknown_base_model: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_unknown_base_model = allow_unknown_base_model

    # --- connection -------------------------------------------------------------------------

    def _add_network_config(self, conn_config: dict[str, Any], extra_dict: dict[str, Any]) -> None:
        super()._add_network_config(conn_config, extra_dict)
        protocol = extra_dict.get("protocol")
        if protocol:
            protocol = str(protocol).lower()
            if protocol not in _PROTOCOLS:
                raise ValueError(
                    f"Connection extra 'protocol' must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}"
                )
            conn_config["protocol"] = protocol
        if isinstance(conn_config.get("port"), str):
            try:
                conn_config["port"] = int(conn_config["port"])
            except ValueError:
                raise ValueError(
                    f"Connection extra 'port' must be a number, got {conn_config['port']!r}"
                ) from None

    def _run_single(self, sql: str, *, action: str, job_id: str | None = None) -> Any:
        """Run one statement and return the first column of its only row."""
        from snowflake.connector.errors import ProgrammingError

        conn: SnowflakeConnection
        with closing(self.get_conn()) as conn, closing(conn.cursor()) as cursor:
            try:
                cursor.execute(sql, num_statements=1)
            except ProgrammingError as exc:
                code = f"{exc.errno}" if exc.errno else None
                what = f" for job {job_id}" if job_id else ""
                message = getattr(exc, "raw_msg", None) or exc.msg
                raise CortexFineTuneError(
                    f"FINETUNE('{action}'){what} failed: {message}", job_id=job_id, error_code=code
                ) from exc
            self.log.info("FINETUNE('%s') query id: %s", action, cursor.sfqid)
            row = cursor.fetchone()
        if row is None:
            raise CortexFineTuneError(f"FINETUNE('{action}') returned no row", job_id=job_id)
        return row[0] if not isinstance(row, Mapping) else next(iter(row.values()))

    # --- the four forms ---------------------------------------------------------------------

    def create_finetune_job(
        self,
        model_name: str,
        base_model: str,
        training_data_query: str,
        validation_data_query: str | None = None,
        options: Mapping[str, Any] | str | None = None,
        max_epochs: int | str | None = None,
    ) -> str:
        """Validate, then submit a fine-tuning job; returns Snowflake's job id.

        Raises :class:`~airflow_cortex.exceptions.CortexValidationError` before connecting if any
        argument breaks a FINETUNE rule.
        """
        request = build_finetune_request(
            model_name=model_name,
            base_model=base_model,
            training_data_query=training_data_query,
            validation_data_query=validation_data_query,
            options=options,
            max_epochs=max_epochs,
            allow_unknown_base_model=self.allow_unknown_base_model,
        )
        sql = create_statement(request)
        self.log.info("Submitting Cortex fine-tuning job:\n%s", sql)
        job_id = self._run_single(sql, action="CREATE")
        if not job_id:
            raise CortexFineTuneError("FINETUNE('CREATE') returned an empty job id")
        self.log.info("Cortex fine-tuning job created: %s", job_id)
        return str(job_id)

    def describe_finetune_job(self, job_id: str) -> FineTuneJob:
        """The job's current state; fails with a clear message if Snowflake no longer knows it."""
        payload = self._run_single(describe_statement(job_id), action="DESCRIBE", job_id=job_id)
        return FineTuneJob.from_describe(payload, job_id=job_id)

    def list_finetune_jobs(self) -> list[FineTuneJobSummary]:
        """Jobs Snowflake still remembers (it garbage-collects old ones)."""
        return parse_show(self._run_single(show_statement(), action="SHOW"))

    def cancel_finetune_job(self, job_id: str) -> str:
        """Cancel a job; returns Snowflake's confirmation message."""
        message = self._run_single(cancel_statement(job_id), action="CANCEL", job_id=job_id)
        self.log.info("%s", message)
        return str(message)
