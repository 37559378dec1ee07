"""Hypothesis strategies for what a DAG might render into a templated parameter."""

from __future__ import annotations

from hypothesis import strategies as st

from airflow_cortex.sql.names import IdentifierPart

# Text a DAG might render, weighted towards what breaks naive encoders.
NASTY = [
    "'",
    "''",
    "\\",
    "\\'",
    "\\\\",
    "$$",
    "--",
    "//",
    "/*",
    "*/",
    ";",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    '"',
    "é",
    "😀",
]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=5)), max_size=20).map("".join)
any_text = st.one_of(st.text(), nasty_text)

quoted_part = st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t)
unquoted_part = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True)
name_part = st.one_of(unquoted_part, quoted_part.map(lambda t: IdentifierPart(t, True).sql()))
model_names = st.lists(name_part, min_size=1, max_size=3).map(".".join)
