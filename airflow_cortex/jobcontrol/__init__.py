"""Pure decisions about a job's life after CREATE, shared by the operator, sensor and trigger.

``waiting`` (when a wait ends and what it reports), ``reattach`` (which job a retry may adopt)
and ``ownership`` (which try owns the job, and whether a kill may cancel it). No I/O here: the
callers read Snowflake, the task state store and the task instance's state, and act on the
verdicts.
"""
