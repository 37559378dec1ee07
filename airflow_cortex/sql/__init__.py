"""FINETUNE's SQL surface, pure (no I/O, no Airflow): what a request may hold and how it is
checked, the statements' text, and the answers' shapes.

``base_models`` (the dated table of published facts), ``names``, ``sources`` (the three forms of
training data), ``lexer`` (quotes, comments and separators), ``literals`` (the injection
surface), ``validation`` (the argument rules), ``request``, ``statements`` and ``results``.
"""
