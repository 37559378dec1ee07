"""Snowflake's SQL API, spoken without the connector (see :mod:`.client`)."""
