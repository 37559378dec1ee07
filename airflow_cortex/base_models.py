"""The base models FINETUNE accepts, with the limits that decide whether a data set fits.

Snowflake adds and retires fine-tunable models over time. The list here is what the reference
documentation named when this release was made; a model Snowflake adds later is allowed by
passing ``allow_unknown_base_model=True`` to the operator or hook (its name must still look
like a model name), so users are never blocked waiting for a provider release.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from airflow_cortex.exceptions import CortexValidationError


@dataclass(frozen=True)
class BaseModelSpec:
    """Limits of one base model, from Snowflake's fine-tuning guide."""

    name: str
    context_window: int
    """Tokens a prompt plus completion may hold; longer pairs are truncated, not rejected."""
    prompt_tokens: int
    completion_tokens: int
    max_rows_one_epoch: int
    """Training rows allowed with one epoch; with N epochs the limit is this divided by N."""

    def max_rows(self, epochs: int) -> int:
        return self.max_rows_one_epoch // max(epochs, 1)


#: Epochs Snowflake trains for when ``max_epochs`` is not given, per its fine-tuning user guide
#: ("Default: 3"). The row limits then are those for three epochs.
DEFAULT_EPOCHS = 3

KNOWN_BASE_MODELS: dict[str, BaseModelSpec] = {
    spec.name: spec
    for spec in (
        BaseModelSpec("llama3-8b", 8_000, 6_000, 2_000, 186_000),
        BaseModelSpec("llama3-70b", 8_000, 6_000, 2_000, 21_000),
        BaseModelSpec("llama3.1-8b", 24_000, 20_000, 4_000, 150_000),
        BaseModelSpec("llama3.1-70b", 8_000, 6_000, 2_000, 13_500),
        BaseModelSpec("mistral-7b", 32_000, 28_000, 4_000, 45_000),
        BaseModelSpec("mixtral-8x7b", 32_000, 28_000, 4_000, 27_000),
    )
}

# Shape of any model name Snowflake has used (lower-case words, digits, dots, dashes): enough
# to catch a pasted SQL fragment or a stray space in an unknown name.
_MODEL_NAME_SHAPE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")


def validate_base_model(value: object, *, allow_unknown: bool = False, parameter: str = "base_model") -> str:
    """Return ``value`` if FINETUNE would accept it as a base model, else raise naming the rule."""
    if not isinstance(value, str):
        raise CortexValidationError(parameter, f"must be a string, not {type(value).__name__}", value)
    if value in KNOWN_BASE_MODELS:
        return value
    known = ", ".join(sorted(KNOWN_BASE_MODELS))
    if not allow_unknown:
        hint = ""
        if value.strip().lower() in KNOWN_BASE_MODELS:
            hint = f" (did you mean {value.strip().lower()!r}? names are lower case)"
        elif close := difflib.get_close_matches(value.strip().lower(), KNOWN_BASE_MODELS, n=1, cutoff=0.8):
            hint = f" (did you mean {close[0]!r}?)"
        raise CortexValidationError(
            parameter,
            f"must be one of {known}{hint}; for a model Snowflake added after this provider "
            "release, pass allow_unknown_base_model=True",
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
