"""What an emulated job makes of its data: the rows that count, the trained tokens, synthetic
but data-driven losses, and the answers its tuned model gives to COMPLETE.

It trains nothing. The figures are computed from the data so that changing the data changes
the result: more varied completions are "harder" to learn, more epochs lower the training loss,
and validation data whose words the training data never shows costs more. A tuned model answers a
prompt with the completion of the training pair whose prompt shares the most words with it
(ties: the earlier pair), so it is deterministic and reflects its training data; a base model
gives one fixed, generic answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from airflow_cortex.sql.base_models import KNOWN_BASE_MODELS

if TYPE_CHECKING:
    from collections.abc import Iterable

# Emulator choices where Snowflake's behaviour is not documented (docs/emulator.md lists them).
DEFAULT_EPOCHS_CAP: Final = 3
CHARS_PER_TOKEN: Final = 4
VALIDATION_SPLIT_EVERY: Final = 10
_NO_LIMIT: Final = 10**12
BASE_MODEL_ANSWER: Final = (
    "I am a general-purpose assistant and do not know this product. Please contact support."
)
_EMPTY: Final = "{} data is empty: the {} query returned no rows with a non-blank prompt and completion."


def estimate_tokens(text: str) -> int:
    """The emulator's token count: one token per four characters, rounded up (the usual figure
    for English; the provider's pre-flight estimate uses it too, so on the emulator the estimate
    and DESCRIBE's ``trained_tokens`` agree, while on Snowflake they differ by the tokenizer)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def usable(value: Any) -> bool:
    """A prompt or completion that teaches something: not NULL, not blank (SQL ``TRIM`` blank)."""
    return value is not None and str(value).strip(" ") != ""


def words(text: str) -> frozenset[str]:
    return frozenset(text.lower().split())


def nearest_completion(prompt: str, pairs: Iterable[tuple[str, str]]) -> str:
    """The completion of the pair whose prompt shares the most words with ``prompt``."""
    asked = words(prompt)
    best, best_score = BASE_MODEL_ANSWER, -1.0
    for known, completion in pairs:
        seen = words(known)
        union = asked | seen
        score = len(asked & seen) / len(union) if union else 0.0
        if score > best_score:
            best, best_score = completion, score
    return best


@dataclass(frozen=True)
class DataSummary:
    """What a job's data amounts to, once rows with a NULL prompt or completion are dropped."""

    rows: int
    input_tokens: int
    """Prompt plus completion tokens, each truncated to the base model's window."""
    distinct_completions: int
    vocabulary: frozenset[str]
    pairs: tuple[tuple[str, str], ...] = ()
    """The usable pairs, in order: what a tuned model's emulated COMPLETE answers from."""

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[Any, Any]], prompt_limit: int, completion_limit: int
    ) -> DataSummary:
        tokens = 0
        pairs: list[tuple[str, str]] = []
        vocabulary: set[str] = set()
        for prompt, completion in rows:
            if usable(prompt) and usable(completion):
                pair = (str(prompt), str(completion))
                pairs.append(pair)
                tokens += min(estimate_tokens(pair[0]), prompt_limit) + min(
                    estimate_tokens(pair[1]), completion_limit
                )
                vocabulary.update(words(pair[1]))
        distinct = len({completion for _, completion in pairs})
        return cls(len(pairs), tokens, distinct, frozenset(vocabulary), tuple(pairs))


@dataclass(frozen=True)
class Training:
    """A job's outcome once its data is read: what DESCRIBE reports when it succeeds."""

    epochs: int
    training: DataSummary
    validation: DataSummary
    trained_tokens: int
    training_loss: float
    validation_loss: float


def train(
    base_model: str,
    requested_epochs: int | None,
    training_rows: list[tuple[Any, Any]],
    validation_rows: list[tuple[Any, Any]] | None,
    has_validation_query: bool,
) -> Training | tuple[str, str]:
    """The job's figures from its rows, or the error (code, message) it ends in."""
    # A document model (arctic-extract) publishes no windows or row limits: none apply.
    spec = KNOWN_BASE_MODELS.get(base_model)
    prompt_cap = spec.prompt_tokens if spec else _NO_LIMIT
    completion_cap = spec.completion_tokens if spec else _NO_LIMIT
    one_epoch_rows = spec.max_rows_one_epoch if spec else _NO_LIMIT
    rows = training_rows
    if not has_validation_query and len(rows) >= VALIDATION_SPLIT_EVERY:
        # Snowflake splits the training data itself when no validation query is given.
        held_out = VALIDATION_SPLIT_EVERY - 1
        validation_rows = rows[held_out::VALIDATION_SPLIT_EVERY]
        rows = [row for i, row in enumerate(rows) if i % VALIDATION_SPLIT_EVERY != held_out]
    training = DataSummary.from_rows(rows, prompt_cap, completion_cap)
    validation = DataSummary.from_rows(
        validation_rows if validation_rows is not None else rows, prompt_cap, completion_cap
    )
    if training.rows == 0:
        return "INVALID_PARAMETER_VALUE", _EMPTY.format("Training", "training")
    if has_validation_query and validation.rows == 0:
        return "INVALID_PARAMETER_VALUE", _EMPTY.format("Validation", "validation")
    epochs = requested_epochs or max(1, min(DEFAULT_EPOCHS_CAP, one_epoch_rows // training.rows))
    allowed = one_epoch_rows // epochs
    if training.rows > allowed:
        return (
            "INVALID_PARAMETER_VALUE",
            f"Training data has {training.rows} rows; {base_model} allows at most {allowed} rows with "
            f"{epochs} epoch(s).",
        )
    variety = training.distinct_completions / training.rows
    training_loss = round(0.15 + 1.6 * variety / (1 + 0.5 * epochs), 4)
    union = training.vocabulary | validation.vocabulary
    overlap = len(training.vocabulary & validation.vocabulary) / len(union) if union else 1.0
    validation_loss = round(training_loss + 0.05 + 0.8 * (1 - overlap), 4)
    return Training(
        epochs, training, validation, training.input_tokens * epochs, training_loss, validation_loss
    )
