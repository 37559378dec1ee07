"""The base models FINETUNE accepts: a dated table with each model's status, source and limits.

Published facts only, with no rule of this provider's and no import from it: the local emulator
reads this table too (it checks everything else it receives by its own code), so both judge a
base model by what Snowflake's pages said on :data:`CHECKED_ON`.

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
  models Snowflake adds after a release); its name must still look like a model name (the
  rules are :mod:`airflow_cortex.sql.validation`'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

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
