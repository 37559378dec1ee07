"""FINETUNE('CREATE')'s arguments as the emulated service checks them, by its own code.

The rules are Snowflake's documented ones (the FINETUNE('CREATE') page, the fine-tuning guide and
the arctic-extract guide; ``../shared/reference/FINETUNE_FACTS.md``): the model name's identifier
rules, an ``options`` JSON object whose only key is ``max_epochs``, an integer from 1 to 10 (2 to
10 for ``arctic-extract``), a base model the dated table lists as available, and Dataset versions
as ``arctic-extract``'s data. Nothing of the provider's validation is imported, so a provider bug
that lets a bad argument through meets the service's refusal here, as it would on Snowflake. The
refusals' wording is a guess (Snowflake publishes none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from airflow_cortex.emulator.identifiers import MODEL_RULE, InvalidName, ObjectName, parse_name
from airflow_cortex.emulator.jobs import EmulatedSnowflakeError
from airflow_cortex.emulator.sources import is_dataset
from airflow_cortex.sql.base_models import DOCUMENT_MODELS, KNOWN_BASE_MODELS

EPOCHS: Final = (1, 10)
_CREATE: Final = "FINETUNE('CREATE')"


@dataclass(frozen=True)
class CreateArguments:
    model_name: str
    name: ObjectName
    base_model: str
    training: str
    validation: str | None
    options: dict[str, Any]

    @property
    def epochs(self) -> int | None:
        epochs = self.options.get("max_epochs")
        return epochs if isinstance(epochs, int) else None


def _refuse(message: str) -> EmulatedSnowflakeError:
    return EmulatedSnowflakeError(f"{_CREATE}: {message}")


def parse_create(args: list[Any]) -> CreateArguments:
    """The checked arguments of one CREATE (after its first, ``'CREATE'``), or the SQL error."""
    if not 3 <= len(args) <= 5:
        raise EmulatedSnowflakeError(f"{_CREATE} takes 4 to 6 arguments")
    name, base_model, training = args[:3]
    validation = args[3] if len(args) > 3 and args[3] != "" else None
    for label, value in (("name", name), ("base_model", base_model), ("training_data_query", training)):
        if not isinstance(value, str) or not value:
            raise _refuse(f"{label} must be a non-empty string")
    if validation is not None and not isinstance(validation, str):
        raise _refuse("validation_data_query must be a string or NULL")
    document = DOCUMENT_MODELS.get(base_model)
    try:
        # The arctic-extract guide writes the model name '@<database>.<schema>.<model_name>'.
        written = name[1:] if document is not None and name.startswith("@") else name
        parsed = parse_name(written, rule=MODEL_RULE, what="model name")
    except InvalidName as error:
        raise _refuse(f"invalid {error}") from None
    epochs = (document.min_epochs, document.max_epochs) if document is not None else EPOCHS
    options = _options(args[4] if len(args) > 4 else None, epochs)
    spec = KNOWN_BASE_MODELS.get(base_model) or document
    if spec is None or not spec.available:
        # The table's status decides, as Snowflake's current list does.
        raise _refuse(f"base model {base_model!r} is not supported for fine-tuning")
    if document is not None and not all(data is None or is_dataset(data) for data in (training, validation)):
        # Documented: arctic-extract trains on Dataset versions.
        raise _refuse(f"{base_model} requires Snowflake ML Dataset versions as training and validation data")
    return CreateArguments(name, parsed, base_model, training, validation, options)


def _options(raw: object, epochs: tuple[int, int]) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise _refuse("options must be a JSON object string")
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as error:
        raise _refuse(f"options is not valid JSON ({error.msg})") from None
    if not isinstance(options, dict):
        raise _refuse("options must be a JSON object")
    unknown = sorted(set(options) - {"max_epochs"})
    if unknown:
        raise _refuse(f"unknown option(s) {', '.join(unknown)}")
    if "max_epochs" in options:
        value = options["max_epochs"]
        low, high = epochs
        if type(value) is not int or not low <= value <= high:
            raise _refuse(f"max_epochs must be an integer from {low} to {high}, got {value!r}")
    return options
