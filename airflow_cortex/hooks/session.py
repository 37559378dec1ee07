"""The settings that pick a Snowflake session, in one place: what every task, trigger and hook
is built from, and what a trigger serialises.

A task names a connection and may override four of its session settings (warehouse, database,
schema, role), templated like any other argument. The same five settings build the worker's
hook, travel with the trigger to the triggerer, key the triggerer's shared clients and fill the
SQL API's statement context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The Snowflake provider's default connection id, repeated so that parsing a DAG file does not
#: import the connector stack (~0.3 s) just to read a constant.
DEFAULT_CONN_ID: Final = "snowflake_default"

#: The connection's settings a task may override for its session.
SESSION_OVERRIDES: Final = ("warehouse", "database", "schema", "role")
#: Everything that picks a session: the connection and its overrides.
CONNECTION_FIELDS: Final = ("snowflake_conn_id", *SESSION_OVERRIDES)


def connection_settings(holder: object) -> dict[str, Any]:
    """``holder``'s connection settings (an operator, sensor or trigger)."""
    return {name: getattr(holder, name) for name in CONNECTION_FIELDS}


def session_key(holder: object) -> tuple[Any, ...]:
    """What tells two holders' sessions apart: the same key, the same session may serve both."""
    return tuple(connection_settings(holder).values())


def overrides(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The session overrides among ``settings`` (a mapping that may hold other keys too)."""
    return {name: settings.get(name) for name in SESSION_OVERRIDES}
