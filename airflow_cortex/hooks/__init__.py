"""I/O: the hook (``finetune``), the only code that talks to Snowflake, and what it is built on:
the two transports (``connector``, ``sqlapi/``), how one is chosen (``transport``), the session
settings (``session``), the job operations over either (``jobs``) and their errors (``errors``)."""
