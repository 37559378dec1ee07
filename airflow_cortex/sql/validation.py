"""The rules FINETUNE('CREATE') sets on its arguments, checked before any statement exists. Pure.

Every check here runs before anything is sent, so invalid input never reaches Snowflake and a
user paying per trained token never pays for a job doomed by a typo. Each failure is a
:class:`~airflow_cortex.exceptions.CortexValidationError` naming the parameter and the rule.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.sql.base_models import (
    AVAILABLE_BASE_MODELS,
    CHECKED_ON,
    DOCUMENT_MODELS,
    KNOWN_BASE_MODELS,
)
from airflow_cortex.sql.lexer import scan_query
from airflow_cortex.sql.sources import (
    DATASET,
    STAGE,
    DataSource,
    classify,
    parse_dataset_uri,
    parse_stage_path,
)

MIN_EPOCHS = 1
MAX_EPOCHS = 10
KNOWN_OPTIONS = frozenset({"max_epochs"})


# Shape of any model name Snowflake has used (lower-case words, digits, dots, dashes): enough
# to catch a pasted SQL fragment or a stray space in an unknown name.
_MODEL_NAME_SHAPE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")


def validate_base_model(value: object, *, allow_unknown: bool = False, parameter: str = "base_model") -> str:
    """Return ``value`` if FINETUNE would accept it as a base model, else raise naming the rule."""
    if not isinstance(value, str):
        raise CortexValidationError(parameter, f"must be a string, not {type(value).__name__}", value)
    if value in DOCUMENT_MODELS:
        return value
    spec = KNOWN_BASE_MODELS.get(value)
    if spec is not None and (spec.available or allow_unknown):
        return value
    available = ", ".join(AVAILABLE_BASE_MODELS)
    if spec is not None:
        raise CortexValidationError(
            parameter,
            f"names a model Snowflake no longer offers for fine-tuning ({spec.source}); use "
            f"{available}, or pass allow_unknown_base_model=True if your account still offers it",
            value,
        )
    if not allow_unknown:
        hint = ""
        if value.strip().lower() in KNOWN_BASE_MODELS:
            hint = f" (did you mean {value.strip().lower()!r}? names are lower case)"
        elif close := difflib.get_close_matches(value.strip().lower(), KNOWN_BASE_MODELS, n=1, cutoff=0.8):
            hint = f" (did you mean {close[0]!r}?)"
        raise CortexValidationError(
            parameter,
            f"must be one of {available} (the models Snowflake offered on {CHECKED_ON.isoformat()}){hint}; "
            "for a model Snowflake added after this provider release, pass allow_unknown_base_model=True",
            value,
        )
    if not _MODEL_NAME_SHAPE.fullmatch(value):
        raise CortexValidationError(
            parameter,
            "an unknown base model must be a lower-case model name of letters, digits, '.', '-' "
            "and '_' (at most 128 characters)",
            value,
        )
    return value


def base_model_warning(value: object) -> str | None:
    """What to warn about a base model that validation let through, or ``None``.

    A retired model passes only with ``allow_unknown_base_model=True``; a job on it may be
    refused, or trained on a model Snowflake no longer maintains, so the warning is loud.
    """
    if value in DOCUMENT_MODELS:
        return None
    spec = KNOWN_BASE_MODELS.get(value) if isinstance(value, str) else None
    if spec is None:
        if isinstance(value, str) and value:
            return (
                f"base_model {value!r} is not in this provider's table (checked {CHECKED_ON.isoformat()}); "
                "it is sent because allow_unknown_base_model=True, and pre-flight cannot check its limits"
            )
        return None
    if spec.available:
        return None
    return (
        f"base_model {value!r} is RETIRED: Snowflake no longer offers it for fine-tuning ({spec.source}). "
        f"It is sent only because allow_unknown_base_model=True; move to {', '.join(AVAILABLE_BASE_MODELS)}"
    )


def check_model_inputs(base_model: str, sources: list[tuple[str, DataSource]], epochs: object) -> None:
    """Rules a base model sets on the other arguments: a document model (``arctic-extract``)
    trains only on Dataset versions and takes its own range of epochs."""
    spec = DOCUMENT_MODELS.get(base_model)
    if spec is None:
        return
    for parameter, source in sources:
        if source.kind != DATASET:
            raise CortexValidationError(
                parameter,
                f"{base_model} trains on a Snowflake ML Dataset version, "
                f"snow://dataset/<name>/versions/<version>, not on a {source.kind} ({spec.source})",
                source.text,
            )
    if isinstance(epochs, int) and not spec.min_epochs <= epochs <= spec.max_epochs:
        raise CortexValidationError(
            "max_epochs",
            f"{base_model} takes {spec.min_epochs} to {spec.max_epochs} epochs ({spec.source})",
            epochs,
        )


def data_source(value: str, parameter: str) -> DataSource:
    """The parsed form of a data argument that :func:`validate_data` accepted."""
    kind = classify(value)
    if kind == DATASET:
        return parse_dataset_uri(value, parameter)
    if kind == STAGE:
        return parse_stage_path(value, parameter)
    return DataSource("query", value)


def validate_data(value: object, parameter: str, hint: str = "") -> str:
    """Check training or validation data in any form FINETUNE takes (see :mod:`.data_sources`):
    a query, a ``snow://dataset/...`` URI, or an ``@stage`` path to JSONL files."""
    if isinstance(value, str) and value.strip() and classify(value) != "query":
        return data_source(value, parameter).text
    return validate_query(value, parameter, hint)


def validate_query(value: object, parameter: str, hint: str = "") -> str:
    """Check that ``value`` can stand inside ``SELECT "PROMPT", "COMPLETION" FROM (<value>)``."""
    suffix = f"; {hint}" if hint else ""
    if not isinstance(value, str):
        raise CortexValidationError(
            parameter,
            "must be a SQL query, a snow://dataset/... URI or an @stage path, "
            f"not {type(value).__name__}{suffix}",
        )
    if not value.strip():
        raise CortexValidationError(parameter, f"must not be empty or whitespace only{suffix}", value)
    shape = scan_query(value)
    if shape.unterminated:
        raise CortexValidationError(parameter, f"has an unterminated {shape.unterminated}", value)
    if not shape.has_code:
        raise CortexValidationError(parameter, "holds only comments, no query", value)
    if shape.code_after_separator:
        raise CortexValidationError(
            parameter,
            "must be a single query, but ';' separates more than one statement "
            "(build the data in an upstream task and select from it here)",
            value,
        )
    if shape.stray_close is not None:
        raise CortexValidationError(
            parameter,
            f"closes a parenthesis it never opened (offset {shape.stray_close}): Snowflake wraps the "
            'query as SELECT "PROMPT", "COMPLETION" FROM (<query>), and that ")" would close the wrapper',
            value,
        )
    if shape.open_parens:
        raise CortexValidationError(
            parameter,
            f"leaves {shape.open_parens} parenthesis(es) open, so it is not a complete query",
            value,
        )
    if shape.trailing_separator:
        raise CortexValidationError(
            parameter,
            "must not end with ';': Snowflake wraps it as "
            'SELECT "PROMPT", "COMPLETION" FROM (<query>), where a ";" is a syntax error',
            value,
        )
    if shape.ends_in_line_comment:
        raise CortexValidationError(
            parameter,
            "must not end inside a '--' or '//' comment: Snowflake wraps the query in parentheses "
            "and the comment would swallow the closing one (end the query with a newline)",
            value,
        )
    return value


def normalize_options(options: object, max_epochs: object = None) -> dict[str, Any]:
    """Merge ``options`` (a mapping or a JSON object string) with ``max_epochs`` and check them.

    Templated values arrive as strings (``{"max_epochs": "{{ params.epochs }}"}`` renders to
    ``"3"``), so digit strings are accepted where an integer is expected.
    """
    merged: dict[str, Any]
    if options is None or options == "":
        merged = {}
    elif isinstance(options, str):
        try:
            loaded = json.loads(options)
        except json.JSONDecodeError as exc:
            raise CortexValidationError("options", f"is not valid JSON ({exc.msg})", options) from None
        if not isinstance(loaded, dict):
            raise CortexValidationError("options", "must be a JSON object", options)
        merged = dict(loaded)
    elif isinstance(options, Mapping):
        merged = dict(options)
    else:
        raise CortexValidationError(
            "options", f"must be a mapping or a JSON object string, not {type(options).__name__}"
        )

    unknown = sorted(str(k) for k in merged if k not in KNOWN_OPTIONS)
    if unknown:
        raise CortexValidationError(
            "options",
            f"has unknown key(s) {', '.join(unknown)}; FINETUNE knows {', '.join(sorted(KNOWN_OPTIONS))}",
        )

    if max_epochs is not None and max_epochs != "":
        epochs = _epochs(max_epochs, "max_epochs")
        if "max_epochs" in merged and _epochs(merged["max_epochs"], "options.max_epochs") != epochs:
            raise CortexValidationError(
                "max_epochs", f"is {epochs} but options.max_epochs is {merged['max_epochs']!r}; give it once"
            )
        merged["max_epochs"] = epochs
    elif "max_epochs" in merged:
        merged["max_epochs"] = _epochs(merged["max_epochs"], "options.max_epochs")
    return merged


def _epochs(value: object, parameter: str) -> int:
    if isinstance(value, bool):
        raise CortexValidationError(parameter, f"must be an integer from {MIN_EPOCHS} to {MAX_EPOCHS}", value)
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value.strip())
    if not isinstance(value, int):
        raise CortexValidationError(parameter, f"must be an integer from {MIN_EPOCHS} to {MAX_EPOCHS}", value)
    if not MIN_EPOCHS <= value <= MAX_EPOCHS:
        raise CortexValidationError(parameter, f"must be from {MIN_EPOCHS} to {MAX_EPOCHS}", value)
    return value


def validate_job_id(job_id: object) -> str:
    # Job ids come in more than one shape (ft_<uuid>, CortexFineTuningWorkflow_<uuid>), so only
    # emptiness is checked; the literal encoding makes any text safe to send.
    if not isinstance(job_id, str) or not job_id.strip():
        raise CortexValidationError("job_id", "must be a non-empty string", job_id)
    return job_id
