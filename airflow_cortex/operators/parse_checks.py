"""The operator's arguments checked when the DAG is parsed, where no template can change them.

A bad literal model name or base model then shows up as a DAG import error in the UI and in a
DAG repository's CI, not as a failed run. Anything templated (or pulled from XCom) is checked
after rendering, when the try builds its request.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.preflight.settings import require_profiled_training, validate_budget
from airflow_cortex.sql import validation as rules
from airflow_cortex.sql.base_models import DOCUMENT_MODELS
from airflow_cortex.sql.names import parse_model_name
from airflow_cortex.version_compat import HAS_TASK_STATE_STORE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Asset

    from airflow_cortex.sql.sources import DataSource


#: The arguments a CREATE is built from (with the budget pre-flight checks them against).
CREATE_ARGUMENTS = (
    "model_name",
    "base_model",
    "training_data_query",
    "validation_data_query",
    "options",
    "max_epochs",
    "max_trained_tokens",
)


def task_arguments(
    kwargs: dict[str, Any], policy: str, model_asset: Asset | None, wait_for_completion: bool
) -> dict[str, Any]:
    """``BaseOperator``'s arguments: a task that creates anew every try is not durable, and
    ``model_asset`` is one of its outlets (an event announces a finished model, so it waits)."""
    if policy == "always_create" and HAS_TASK_STATE_STORE:
        kwargs["durable"] = False  # below 3.3 nothing is durable, and the mixin warns if told
    if model_asset is not None:
        if not wait_for_completion:
            raise CortexValidationError(
                "model_asset",
                "needs wait_for_completion=True: the event announces a finished model, and without "
                "waiting the task ends while the job still trains",
            )
        kwargs["outlets"] = [*(kwargs.get("outlets") or []), model_asset]
    return kwargs


def has_template(value: object) -> bool:
    """Whether ``value`` is rendered later: a Jinja string, a mapping holding one, or a lazy
    value (an ``XComArg``)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(has_template(v) for v in value.values())
    return not isinstance(value, (int, float, type(None)))


def check_untemplated(
    task_id: str,
    arguments: Mapping[str, Any],
    *,
    allow_unknown_base_model: bool,
    template_ext: Sequence[str],
) -> None:
    """Check the CREATE arguments (``model_name``, ``base_model``, the two data queries,
    ``options``, ``max_epochs``, ``max_trained_tokens``) that hold no template."""
    base_model = arguments["base_model"]
    literal_base = isinstance(base_model, str) and not has_template(base_model)
    model_name = arguments["model_name"]
    if isinstance(model_name, str) and not has_template(model_name):
        at_prefix = not literal_base or base_model in DOCUMENT_MODELS
        parse_model_name(model_name, at_prefix=at_prefix)
    if literal_base:
        rules.validate_base_model(base_model, allow_unknown=allow_unknown_base_model)
        if notice := rules.base_model_warning(base_model):
            warnings.warn(f"Task {task_id}: {notice}", UserWarning, stacklevel=4)
    sources: list[tuple[str, DataSource]] = []
    for parameter in ("training_data_query", "validation_data_query"):
        query = arguments[parameter]
        # A string ending in a template extension names a file Airflow reads at render time.
        if isinstance(query, str) and not has_template(query) and not query.endswith(tuple(template_ext)):
            sources.append((parameter, rules.data_source(rules.validate_data(query, parameter), parameter)))
    options, max_epochs, budget = (
        arguments["options"],
        arguments["max_epochs"],
        arguments["max_trained_tokens"],
    )
    epochs = None
    if isinstance(options, (str, Mapping, type(None))) and not (
        has_template(options) or has_template(max_epochs)
    ):
        epochs = rules.normalize_options(options, max_epochs).get("max_epochs")
        if not has_template(budget):
            require_profiled_training(
                validate_budget(budget, epochs), dict(sources).get("training_data_query")
            )
    if literal_base:
        rules.check_model_inputs(base_model, sources, epochs)
