"""The Airflow connection that points at a running emulator, as tests and the CLI hand it out."""

from __future__ import annotations

import json
from typing import Any


class AirflowConnections:
    """Connections to the emulator listening at ``host``/``port`` (with ``tls``: over HTTPS)."""

    host: str
    port: int | None
    tls: bool

    def connection_extra(self, database: str | None = None, warehouse: str = "EMULATOR_WH") -> dict[str, Any]:
        """The ``extra`` of a ``snowflake`` Airflow connection that points here."""
        if self.port is None:
            raise RuntimeError("The emulator is not running")
        extra: dict[str, Any] = {
            "account": "cortexemulator",
            "host": self.host,
            "port": self.port,
            "protocol": "https" if self.tls else "http",
            "warehouse": warehouse,
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        }
        if self.tls:
            # A certificate made a second ago has no revocation responder to ask.
            extra["insecure_mode"] = True
        if database:
            extra["database"] = database
        return extra

    def airflow_connection(self, database: str | None = None, schema: str | None = None) -> dict[str, Any]:
        """A connection in Airflow's JSON form, e.g. for ``AIRFLOW_CONN_<ID>``."""
        connection: dict[str, Any] = {
            "conn_type": "snowflake",
            "login": "emulator",
            "password": "emulator",
            "extra": self.connection_extra(database=database),
        }
        if schema:
            connection["schema"] = schema
        return connection

    def airflow_connection_json(self, database: str | None = None, schema: str | None = None) -> str:
        return json.dumps(self.airflow_connection(database=database, schema=schema))
