"""Airflow glue the operator, sensor and trigger share: the task mixin (``mixins``), reading a
task instance's state (``task_instance``), OpenLineage (``lineage``) and a call on a thread of
its own (``offthread``)."""
