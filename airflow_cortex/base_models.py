"""The base models FINETUNE accepts: a dated table with each model's status, source and limits.

Snowflake adds and retires fine-tunable models over time, and its pages have disagreed: the
FINETUNE('CREATE') reference once listed six models and, when this table was last checked,
listed only ``llama3.1-8b``. Each entry therefore says whether Snowflake offers it today and
where that was read, so the table can be re-checked instead of trusted.

- An **available** model is accepted.
- A **retired** model (no longer listed) fails validation, because a job on it would be refused
  or, worse, run on a model Snowflake no longer maintains. Accounts that still have it pass
  ``allow_unknown_base_model=True``; the task then warns loudly, at parse time and in the log.
- ``arctic-extract`` (the arctic-extract guide) trains on documents from a Snowflake ML
  Dataset; :data:`DOCUMENT_MODELS` holds its own rules.
- A model the table does not know is refused unless ``allow_unknown_base_model=True`` (for
  models Snowflake adds after a release); its name must still look like a model name.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from airflow_cortex.exceptions import CortexValidationError

#: When the statuses below were last checked against Snowflake's pages.
CHECKED_ON = date(2026, 11, 26)

CREATE_PAGE = "https://docs.snowflake.com/en/sql-reference/functions/finetune-create"
"""Its ``base_model`` list names the models Snowflake offers today."""
GUIDE_PAGE = "https://docs.snowflake.com/en/user-guide/snowflake-cortex/cortex-finetuning"
"""The user guide: context windows and row limits per model ("Models available to fine-tune")."""


@dataclass(frozen=True)
class BaseModelSpec:
    """One fine-tunable model: its limits (from the user guide) and whether it is offered."""

    name: str
    context_window: int
    """Tokens a prompt plus completion may hold; longer pairs are truncated, not rejected."""
    prompt_tokens: int
    completion_tokens: int
    max_rows_one_epoch: int
    """Training rows allowed with one epoch; with N epochs the limit is this divided by N."""
    status: Literal["available", "retired"] = "available"
    source: str = CREATE_PAGE
    """Where the status was read (on :data:`CHECKED_ON`)."""

    def max_rows(self, epochs: int) -> int:
        return self.max_rows_one_epoch // max(epochs, 1)

    @property
    def available(self) -> bool:
        return self.status == "available"


#: Epochs Snowflake trains for when ``max_epochs`` is not given, per its fine-tuning user guide
#: ("Default: 3"). The row limits then are those for three epochs.
DEFAULT_EPOCHS = 3

_RETIRED_SOURCE = (
    f"listed by the original FINETUNE('CREATE') page, absent from the current one ({CREATE_PAGE}, which "
    f"names only llama3.1-8b, read {CHECKED_ON.isoformat()}; older and translated copies still list it)"
)

KNOWN_BASE_MODELS: dict[str, BaseModelSpec] = {
    spec.name: spec
    for spec in (
        BaseModelSpec("llama3.1-8b", 24_000, 20_000, 4_000, 150_000),
        BaseModelSpec("llama3-8b", 8_000, 6_000, 2_000, 186_000, "retired", _RETIRED_SOURCE),
        BaseModelSpec("llama3-70b", 8_000, 6_000, 2_000, 21_000, "retired", _RETIRED_SOURCE),
        BaseModelSpec("llama3.1-70b", 8_000, 6_000, 2_000, 13_500, "retired", _RETIRED_SOURCE),
        BaseModelSpec("mistral-7b", 32_000, 28_000, 4_000, 45_000, "retired", _RETIRED_SOURCE),
        BaseModelSpec("mixtral-8x7b", 32_000, 28_000, 4_000, 27_000, "retired", _RETIRED_SOURCE),
    )
}

ARCTIC_EXTRACT_PAGE = "https://docs.snowflake.com/en/user-guide/snowflake-cortex/arctic-extract-finetuning"


@dataclass(frozen=True)
class DocumentModelSpec:
    """A model tuned on documents for ``AI_EXTRACT``, not on prompt/completion text.

    Its training data is a Snowflake ML Dataset version (document files and the answers to
    extract), so pre-flight cannot profile it and no token windows or row limits are published.
    """

    name: str
    min_epochs: int
    max_epochs: int
    """``max_epochs`` bounds from the model's guide (2 to 10 on the English page on
    :data:`CHECKED_ON`; some translations still say the option is not supported)."""
    status: Literal["available", "retired"] = "available"
    source: str = ARCTIC_EXTRACT_PAGE

    @property
    def available(self) -> bool:
        return self.status == "available"


DOCUMENT_MODELS: dict[str, DocumentModelSpec] = {"arctic-extract": DocumentModelSpec("arctic-extract", 2, 10)}

#: The models Snowflake offers today, per the two tables.
AVAILABLE_BASE_MODELS = tuple(
    sorted(
        [name for name, spec in KNOWN_BASE_MODELS.items() if spec.available]
        + [name for name, doc in DOCUMENT_MODELS.items() if doc.available]
    )
)

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
