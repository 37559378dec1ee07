"""Snowflake's SQL API, spoken without the connector: the protocol (``client``, blocking, and
``aio``, for the triggerer's event loop), a connection's credentials read without the connector
(``credentials``), and one statement run with the provider's errors (``run``)."""
