"""Operator extra links: the Snowsight button (``snowsight``)."""
