"""The Snowsight link on a fine-tuning task: the tuned model, or the CREATE query before that.

The URL is built from the connection's account identifier, the way Snowsight addresses
accounts: ``https://app.snowflake.com/<org>/<account>/`` for an ``org-account`` identifier and
``https://app.snowflake.com/<region>/<locator>/`` for a legacy account locator. A deployment
behind private connectivity (or any other address) sets the connection extra
``snowsight_url`` to its own base URL instead.

The URL is computed on the worker while the task runs and kept in XCom, so the web server
never needs the connection to draw the button. The operator's running try holds the latest URL
too (``operator.snowsight_url``): Airflow asks the link for it when the try ends, and a try that
failed before CREATE has none to give (reading XCom then would only log a missing key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_cortex.sql.names import parse_model_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

SNOWSIGHT = "https://app.snowflake.com"
#: Where accounts given as a bare locator live (Snowflake's original region).
DEFAULT_LOCATOR_REGION = "us-west-2"


def snowsight_base_url(
    account: str | None, region: str | None = None, override: str | None = None
) -> str | None:
    """The Snowsight home of ``account`` (as written in a ``snowflake`` connection), or ``None``."""
    if override:
        return override.rstrip("/")
    if not account:
        return None
    account = account.strip().lower()
    for suffix in (".snowflakecomputing.com", ".privatelink"):
        account = account.removesuffix(suffix)
    if "." in account:  # locator.region[.cloud]
        locator, located_region = account.split(".", 1)
        return f"{SNOWSIGHT}/{quote(located_region)}/{quote(locator)}"
    if "-" in account:  # organization-account_name
        organization, name = account.split("-", 1)
        return f"{SNOWSIGHT}/{quote(organization)}/{quote(name.replace('-', '_'))}"
    return f"{SNOWSIGHT}/{quote((region or DEFAULT_LOCATOR_REGION).lower())}/{quote(account)}"


def model_url(base: str, model: str, database: str | None = None, schema: str | None = None) -> str:
    """The tuned model's page.

    ``model`` is DESCRIBE's name for it: usually fully qualified, but published outputs also show
    a bare name (``"model":"my_tuned_model"``), which lives in the session's ``database`` and
    ``schema`` (FINETUNE saves the model in the schema it resolves the name in).
    """
    parsed = parse_model_name(model, "model")
    parts = [p.text for p in parsed.parts]
    if len(parts) < 3:
        context = [database, schema][: 3 - len(parts)]
        if not all(context):
            raise ValueError(
                f"A model URL needs a fully qualified model name or the session's database and schema, "
                f"got {model!r}"
            )
        parts = [str(part) for part in context] + parts
    database_part, schema_part, name = (quote(part, safe="") for part in parts)
    return f"{base}/#/data/databases/{database_part}/schemas/{schema_part}/model/{name}"


def placed_model_url(place: Sequence[str | None] | None, model: str | None, log: Any) -> str | None:
    """The tuned model's page, from where it will be (``[base, database, schema]``, as a deferring
    task reads it), or ``None``. A link never fails a task whose paid job succeeded: a name it
    cannot place gets no link, with a warning."""
    if not (place and model):
        return None
    base, database, schema = place
    try:
        return model_url(str(base), model, database, schema)
    except Exception as error:
        log.warning("No Snowsight link to model %s: %s", model, error)
        return None


def snowsight_base(hook: Any, log: Any) -> str | None:
    """Snowsight's URL for ``hook``'s connection, or ``None``: a link never fails a task."""
    try:
        base: str | None = hook.snowsight_base_url()
    except Exception:
        log.debug("No Snowsight link: the connection's account could not be read", exc_info=True)
        return None
    return base


def model_place(hook: Any, base: str | None, log: Any) -> list[str | None] | None:
    """Where a tuned model's page will be: Snowsight's ``base`` URL and the session's database
    and schema (a model DESCRIBE names without them lives there); ``None`` without a link."""
    if not base:
        return None
    try:
        params = hook._get_conn_params()
    except Exception:
        log.debug("No Snowsight link: the connection could not be read", exc_info=True)
        return None
    return [base, params.get("database"), params.get("schema")]


def query_url(base: str, query_id: str) -> str:
    """A statement's page in Snowsight's query history (CREATE's shows the job id it returned)."""
    return f"{base}/#/compute/history/queries/{quote(query_id, safe='')}/detail"


class CortexSnowsightLink(BaseOperatorLink):
    """ "Snowsight" button: the tuned model once the job succeeded, the CREATE query until then."""

    name = "Snowsight"

    @property
    def xcom_key(self) -> str:
        """Airflow 3's own key for a link's XCom (``_link_<class>``), spelled here because Airflow
        2.11's ``BaseOperatorLink`` has no ``xcom_key``: one key on every version, so a link
        written by a task on one is read by a web server on another."""
        return f"_link_{type(self).__name__}"

    @classmethod
    def persist(cls, context: Any, url: str) -> None:
        context["ti"].xcom_push(key=cls().xcom_key, value=url)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        # The running try's own URL when this instance ran it (a try that failed before CREATE
        # has none: ""), so Airflow's question at the end of a try costs no XCom read.
        known = getattr(operator, "snowsight_url", None)
        if known is not None:
            return str(known)
        from airflow.providers.common.compat.sdk import XCom  # only where a task runs

        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""
