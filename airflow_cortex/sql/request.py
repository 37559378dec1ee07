"""A validated FINETUNE('CREATE') request: the one object statements are built from. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_cortex.sql.base_models import DOCUMENT_MODELS
from airflow_cortex.sql.names import ModelName, parse_model_name
from airflow_cortex.sql.validation import (
    check_model_inputs,
    data_source,
    normalize_options,
    validate_base_model,
    validate_data,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_cortex.sql.sources import DataSource


@dataclass(frozen=True)
class FineTuneRequest:
    """A validated CREATE request; only :func:`build_finetune_request` makes one."""

    model_name: ModelName
    base_model: str
    training_data_query: str
    validation_data_query: str | None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def data_sources(self) -> list[tuple[str, DataSource]]:
        """``(parameter, source)`` for the training data and, if given, the validation data."""
        sources = [("training_data_query", data_source(self.training_data_query, "training_data_query"))]
        if self.validation_data_query is not None:
            sources.append(
                ("validation_data_query", data_source(self.validation_data_query, "validation_data_query"))
            )
        return sources

    @property
    def data_queries(self) -> list[tuple[str, str]]:
        """``(parameter, query)`` for the data given as queries: the ones pre-flight can profile."""
        return [(parameter, source.text) for parameter, source in self.data_sources if source.is_query]


def build_finetune_request(
    model_name: object,
    base_model: object,
    training_data_query: object,
    validation_data_query: object = None,
    options: object = None,
    max_epochs: object = None,
    *,
    allow_unknown_base_model: bool = False,
) -> FineTuneRequest:
    """Validate every CREATE argument; raise ``CortexValidationError`` at the first bad one."""
    base = validate_base_model(base_model, allow_unknown=allow_unknown_base_model)
    request = FineTuneRequest(
        model_name=parse_model_name(model_name, "model_name", at_prefix=base in DOCUMENT_MODELS),
        base_model=base,
        training_data_query=validate_data(training_data_query, "training_data_query"),
        validation_data_query=(
            None
            if validation_data_query is None
            else validate_data(
                validation_data_query,
                "validation_data_query",
                hint="pass None to let Snowflake split the training data instead",
            )
        ),
        options=normalize_options(options, max_epochs),
    )
    check_model_inputs(request.base_model, request.data_sources, request.options.get("max_epochs"))
    return request
