"""The operator that starts a Cortex fine-tuning job from a DAG."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_cortex.base_models import validate_base_model
from airflow_cortex.names import parse_model_name
from airflow_cortex.statements import normalize_options

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_cortex.hooks.finetune import CortexFineTuneHook

# The hook (and with it the Snowflake connector stack) is imported only when a task runs: DAG
# files that use the operator are parsed over and over, and the import costs ~0.3 s each time.
DEFAULT_CONN_ID = "snowflake_default"


def _has_template(value: object) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_has_template(v) for v in value.values())
    return not isinstance(value, (int, float, type(None)))  # an XComArg or other lazy value


class CortexFineTuneOperator(BaseOperator):
    """Start a ``SNOWFLAKE.CORTEX.FINETUNE('CREATE', ...)`` job and push its id to XCom.

    Every argument is validated after templating and before anything is sent, so a bad
    model name or a query ending in ``;`` fails the task in seconds with a message naming the
    parameter, instead of failing a paid job later. Arguments that are not templated are
    checked already when the DAG is parsed. The job id is the task's return value and
    is also pushed under the key ``job_id``, ready for a downstream sensor:
    ``"{{ ti.xcom_pull(task_ids='finetune', key='job_id') }}"``.

    :param model_name: Name of the tuned model: ``name``, ``schema.name`` or
        ``db.schema.name``; quote parts with other characters. Snowflake adds a suffix if the
        name is taken, so read the real name from DESCRIBE, not from here.
    :param base_model: One of the fine-tunable models (see ``KNOWN_BASE_MODELS``).
    :param training_data_query: A single query (or a ``.sql`` file) returning ``prompt`` and
        ``completion`` columns; no trailing ``;``.
    :param validation_data_query: Same shape; ``None`` lets Snowflake split the training data.
    :param options: FINETUNE options, a mapping or JSON object string (``{"max_epochs": 3}``).
    :param max_epochs: Shortcut for ``options["max_epochs"]``, an integer from 1 to 10.
    :param allow_unknown_base_model: Accept a base model this release does not list, for
        models Snowflake adds later.
    :param snowflake_conn_id: A ``snowflake`` connection.
    :param warehouse: Overrides the connection's warehouse (it runs the data queries).
    :param database: Overrides the connection's database (unqualified names resolve in it).
    :param schema: Overrides the connection's schema.
    :param role: Overrides the connection's role (it needs CREATE MODEL on the target schema).
    """

    template_fields: Sequence[str] = (
        "model_name",
        "base_model",
        "training_data_query",
        "validation_data_query",
        "options",
        "max_epochs",
        "warehouse",
        "database",
        "schema",
        "role",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {
        "training_data_query": "sql",
        "validation_data_query": "sql",
        "options": "json",
    }
    ui_color = "#29b5e8"

    def __init__(
        self,
        *,
        model_name: str,
        base_model: str,
        training_data_query: str,
        validation_data_query: str | None = None,
        options: Mapping[str, Any] | str | None = None,
        max_epochs: int | str | None = None,
        allow_unknown_base_model: bool = False,
        snowflake_conn_id: str = DEFAULT_CONN_ID,
        warehouse: str | None = None,
        database: str | None = None,
        schema: str | None = None,
        role: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.base_model = base_model
        self.training_data_query = training_data_query
        self.validation_data_query = validation_data_query
        self.options = options
        self.max_epochs = max_epochs
        self.allow_unknown_base_model = allow_unknown_base_model
        self.snowflake_conn_id = snowflake_conn_id
        self.warehouse = warehouse
        self.database = database
        self.schema = schema
        self.role = role
        self._check_untemplated_arguments()

    def _check_untemplated_arguments(self) -> None:
        """Fail at DAG parse time on arguments no template can change.

        A bad literal model name or base model then shows up as a DAG import error in the UI and
        in a DAG repository's CI, not as a failed run. Anything templated (or pulled from XCom)
        is checked after rendering, in ``execute``.
        """
        if isinstance(self.model_name, str) and not _has_template(self.model_name):
            parse_model_name(self.model_name)
        if isinstance(self.base_model, str) and not _has_template(self.base_model):
            validate_base_model(self.base_model, allow_unknown=self.allow_unknown_base_model)
        if isinstance(self.options, (str, Mapping, type(None))) and not (
            _has_template(self.options) or _has_template(self.max_epochs)
        ):
            normalize_options(self.options, self.max_epochs)

    @cached_property
    def hook(self) -> CortexFineTuneHook:
        from airflow_cortex.hooks.finetune import CortexFineTuneHook

        return CortexFineTuneHook(
            snowflake_conn_id=self.snowflake_conn_id,
            warehouse=self.warehouse,
            database=self.database,
            schema=self.schema,
            role=self.role,
            allow_unknown_base_model=self.allow_unknown_base_model,
        )

    def execute(self, context: Context) -> str:
        job_id = self.hook.create_finetune_job(
            model_name=self.model_name,
            base_model=self.base_model,
            training_data_query=self.training_data_query,
            validation_data_query=self.validation_data_query,
            options=self.options,
            max_epochs=self.max_epochs,
        )
        context["ti"].xcom_push(key="job_id", value=job_id)
        return job_id
