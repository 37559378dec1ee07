"""The local Cortex emulator: a service double of ``SNOWFLAKE.CORTEX.FINETUNE`` behind a real
Snowflake-protocol server, for running and testing DAGs offline. It trains nothing.

Like moto or fakesnow, it never imports the client it fakes: it checks what it receives with its
own reading of Snowflake's documented rules (``identifiers``, ``sources``, ``arguments``,
``lexer``) and shares with the provider only the published facts (the dated base-model table,
:mod:`airflow_cortex.sql.base_models`). The service: ``engine`` (the four forms, the model
registry), ``jobs`` (a job's life), ``training`` (what a job makes of its data),
``data_store`` (Dataset versions and stage files). The server: ``server`` (:class:`CortexEmulator`),
``catalog`` (the functions inside fakesnow's DuckDB), ``sql_api`` and ``sql_api_auth`` (the
SQL API), ``network`` (faults and retries at the HTTP edge), ``control`` (routes for tests in
other processes), ``tls``. Running it: ``cli`` (``cortex-emulator``) and ``process`` (in a child
process). Needs the ``emulator`` extra; the pytest fixtures are :mod:`airflow_cortex.testing`'s.
"""
