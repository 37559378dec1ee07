"""SQL API credentials read from an Airflow ``snowflake`` connection, without the connector.

The worker builds its SQL API headers with the Snowflake provider's token provider, which needs
the provider's ``SnowflakeHook`` and so the connector. The triggerer must not load the connector
(it costs 0.2-0.3 s of a shared event loop and memory per process), so the trigger reads the
same connection fields here, the way ``SnowflakeHook`` reads them (an ``extra`` key with or
without the ``extra__snowflake__`` prefix; the private key's passphrase in the password), and
signs key-pair JWTs with the provider's connector-free ``JWTGenerator``.

Supported without the connector: key-pair JWT and programmatic access tokens. An OAuth
connection needs the provider's token refresh, so its trigger keeps the connector transport.
"""

from __future__ import annotations

import base64
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_cortex.hooks.session import SESSION_OVERRIDES
from airflow_cortex.hooks.transport import base_url, read_timeout
from airflow_cortex.hooks.transport import extra_value as _extra

if TYPE_CHECKING:
    from airflow_cortex.hooks.sqlapi.client import SqlApiClient


@dataclass
class ConnectionCredentials:
    """What one connection authenticates with, and where its SQL API is."""

    base_url: str
    account: str
    user: str
    token: str | None = field(default=None, repr=False)
    """A programmatic access token, sent as is."""
    private_key: Any = field(default=None, repr=False)
    context: dict[str, str | None] = field(default_factory=dict)
    read_timeout: float | None = None
    """The connection's ``socket_timeout``: how long one answer may take to arrive."""
    _jwt: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def headers(self) -> dict[str, str]:
        """``Authorization`` and the token-type header for the next request."""
        if self.token is not None:
            return {
                "Authorization": f"Bearer {self.token}",
                "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN",
            }
        from airflow.providers.snowflake.utils.sql_api_generate_jwt import JWTGenerator

        with self._lock:
            if self._jwt is None:
                self._jwt = JWTGenerator(self.account, self.user, private_key=self.private_key)
            token = self._jwt.get_token()
        return {"Authorization": f"Bearer {token}", "X-Snowflake-Authorization-Token-Type": "KEYPAIR_JWT"}


def sql_api_supported(connection: Any) -> bool:
    """Whether :func:`from_connection` can serve this connection (PAT or private key)."""
    extra = connection.extra_dejson
    authenticator = str(_extra(extra, "authenticator") or "").lower()
    if authenticator == "programmatic_access_token":
        return True
    return authenticator in ("", "snowflake", "snowflake_jwt") and bool(
        _extra(extra, "private_key_content") or _extra(extra, "private_key_file")
    )


def from_connection(connection: Any, overrides: dict[str, str | None] | None = None) -> ConnectionCredentials:
    """Credentials for an Airflow ``Connection`` (``overrides``: warehouse/database/schema/role)."""
    extra = connection.extra_dejson
    account = _extra(extra, "account") or ""
    params = {
        "host": connection.host or _extra(extra, "host"),
        "port": connection.port or _extra(extra, "port"),
        "protocol": _extra(extra, "protocol"),
        "account": account,
    }
    context = {name: _extra(extra, name) for name in SESSION_OVERRIDES}
    context["schema"] = connection.schema or context["schema"]
    context.update({k: v for k, v in (overrides or {}).items() if v})
    credentials = ConnectionCredentials(
        base_url=base_url(params),
        account=str(account),
        user=str(connection.login or ""),
        context=context,
        read_timeout=read_timeout(extra),
    )
    if str(_extra(extra, "authenticator") or "").lower() == "programmatic_access_token":
        if not connection.password:
            raise ValueError("A programmatic access token connection needs the token in its password")
        credentials.token = connection.password
        return credentials
    credentials.private_key = _private_key(extra, connection.password)
    return credentials


def _private_key(extra: dict[str, Any], password: str | None) -> Any:
    """The connection's private key, read as ``SnowflakeHook.get_private_key`` reads it."""
    from cryptography.hazmat.primitives import serialization

    passphrase = password.strip().encode() if password else None
    content = _extra(extra, "private_key_content")
    path = _extra(extra, "private_key_file")
    if content and path:
        raise ValueError("The private_key_file and private_key_content extras are mutually exclusive")
    if path:
        pem = Path(path).read_bytes()
    elif content:
        try:
            return serialization.load_pem_private_key(str(content).encode(), password=passphrase)
        except (TypeError, ValueError):
            pem = base64.b64decode(str(content))
    else:
        raise ValueError("The SQL API needs a private key or a programmatic access token")
    return serialization.load_pem_private_key(pem, password=passphrase)


def ssl_context() -> ssl.SSLContext:
    """Trust what ``requests`` would: ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE``, else certifi."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if not bundle:
        import certifi

        bundle = certifi.where()
    return ssl.create_default_context(cafile=bundle)


def blocking_client(credentials: ConnectionCredentials) -> SqlApiClient:
    """A blocking client for ``credentials`` (the async one is :mod:`.aio`'s), for the rare
    statement that runs off the triggerer's loop: a killed task's CANCEL."""
    from airflow_cortex.hooks.sqlapi.client import SqlApiClient

    return SqlApiClient(
        base_url=credentials.base_url,
        headers=credentials.headers,
        context=credentials.context,
        read_timeout=credentials.read_timeout,
    )
