"""A job's life after CREATE, shared by the operator, sensor and trigger.

Pure decisions: ``waiter`` (when a wait ends, and the one loop that waits), ``events`` (what a
wait ends in), ``reattach`` (which job a retry may adopt) and ``ownership`` (which try owns the
job, and whether a kill may cancel it); and ``records``, the one module that reads and writes
the task state store. The callers read Snowflake and the task instance's state, and act on the
verdicts.
"""
