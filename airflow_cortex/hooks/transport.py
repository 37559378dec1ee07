"""Which way a hook's statements travel, the Snowflake connector or the SQL API, and the
connection settings both read the same way. Pure: no I/O, no connector.

Both transports run the same statements with the same validation and the same errors; they
differ in what they cost. The connector logs in (one session per call, or one kept session while
waiting) and works with every authentication method. The SQL API needs no login (each request
carries a key-pair JWT, an OAuth token or a programmatic access token) and no connector.

``transport`` (the hook's argument, else the connection extra of that name) chooses:

- ``"auto"`` (the default): the SQL API when the connection's credential works with it (a
  private key, an OAuth token, a PAT), the connector otherwise (password authentication);
- ``"connector"``: every connection works, as releases before the SQL API transport did;
- ``"sql_api"``: the SQL API; a connection without a credential it accepts fails clearly.
"""

from __future__ import annotations

from typing import Any, Literal

Transport = Literal["connector", "sql_api"]
TRANSPORTS = ("connector", "sql_api", "auto")
_TOKEN_AUTHENTICATORS = frozenset({"oauth", "programmatic_access_token"})
_PREFIX = "extra__snowflake__"


def resolve_transport(choice: object, conn_params: dict[str, Any]) -> Transport:
    """The transport ``choice`` (``None``: ``auto``) means for a connection's parameters."""
    value = "auto" if choice in (None, "") else str(choice).lower()
    if value not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {choice!r}")
    if value == "auto":
        return "sql_api" if sql_api_credential(conn_params) else "connector"
    return "sql_api" if value == "sql_api" else "connector"


def sql_api_credential(conn_params: dict[str, Any]) -> str | None:
    """The SQL API credential a connection has (``KEYPAIR_JWT``, ``OAUTH``, a PAT), or ``None``."""
    authenticator = str(conn_params.get("authenticator") or "").lower()
    if authenticator in _TOKEN_AUTHENTICATORS:
        return authenticator.upper()
    if conn_params.get("private_key"):
        return "KEYPAIR_JWT"
    return None


def extra_value(extra: dict[str, Any], name: str) -> Any:
    """A ``snowflake`` connection extra, with or without the ``extra__snowflake__`` prefix (as
    ``SnowflakeHook`` reads them)."""
    value = extra.get(name)
    return extra.get(f"{_PREFIX}{name}") if value in (None, "") else value


def seconds_extra(name: str, value: Any) -> int | None:
    """A timeout extra (``login_timeout``, ``network_timeout``, ``socket_timeout``) in whole
    seconds, ``None`` if unset; read the same way for the connector and the SQL API."""
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"Connection extra {name!r} must be a number of seconds, got {value!r}") from None


def read_timeout(extra: dict[str, Any]) -> float | None:
    """The ``socket_timeout`` extra, which bounds the connector's reads, as the SQL API's read
    timeout: one setting makes a stalled answer a retried network fault on either transport."""
    seconds = seconds_extra("socket_timeout", extra_value(extra, "socket_timeout"))
    return float(seconds) if seconds is not None and seconds > 0 else None


def base_url(conn_params: dict[str, Any]) -> str:
    """Where the SQL API is: the connection's ``host`` (and ``port``, ``protocol``) when set, as
    for a proxy or the local emulator; else ``https://<account>.snowflakecomputing.com``."""
    host = conn_params.get("host")
    if host:
        protocol = conn_params.get("protocol") or "https"
        port = conn_params.get("port")
        return f"{protocol}://{host}" + (f":{port}" if port else "")
    account = conn_params.get("account")
    if not account:
        raise ValueError("The SQL API needs the connection's account (or a host)")
    return f"https://{account}.snowflakecomputing.com"
