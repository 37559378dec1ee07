"""What a fine-tune task tells the world beyond XCom: the Snowsight link, the tuned model's asset
event and its OpenLineage facets.

None of it may fail a task whose paid job succeeded: a link that cannot be built is left out,
and lineage reports what it can.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_cortex.links.snowsight import CortexSnowsightLink, model_place, snowsight_base

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Asset, Context

    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.operators.attempt import Attempt
    from airflow_cortex.sql.request import FineTuneRequest

#: The result fields an asset event for the tuned model carries in its ``extra``.
ASSET_EXTRA_KEYS = ("job_id", "model", "base_model", "trained_tokens", "training_loss", "validation_loss")


class ModelReporting:
    """The link, asset event and lineage of :class:`~.finetune.CortexFineTuneOperator`."""

    _attempt: Attempt | None
    hook: CortexFineTuneHook
    model_asset: Asset | None
    training_data_query: str
    validation_data_query: str | None
    log: Any

    def _request(self) -> FineTuneRequest:
        raise NotImplementedError

    @property
    def snowsight_url(self) -> str | None:
        """What the Snowsight link shows for the running try (see :class:`CortexSnowsightLink`)."""
        return None if self._attempt is None else self._attempt.snowsight_url

    def _link(self, url: str | None, context: Context) -> None:
        if url and self._attempt is not None:
            self._attempt.snowsight_url = url
            CortexSnowsightLink.persist(context, url)

    def _model_place(self) -> list[str | None] | None:
        """Where the tuned model's page will be (as the deferring try read it, if it did)."""
        attempt = self._attempt
        if attempt is not None and attempt.model_place is not None:
            return attempt.model_place
        return model_place(self.hook, self._snowsight_base, self.log)

    @cached_property
    def _snowsight_base(self) -> str | None:
        return snowsight_base(self.hook, self.log)

    def _announce(self, result: dict[str, Any], context: Context) -> None:
        """The asset event for the tuned model, if the task has ``model_asset``."""
        if self.model_asset is None:
            return
        extra = {key: result[key] for key in ASSET_EXTRA_KEYS}
        context["outlet_events"][self.model_asset].extra.update(extra)
        label = getattr(self.model_asset, "name", self.model_asset.uri)  # 2.11's datasets: no name
        self.log.info("Asset event for %s: %s", label, extra)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: what the training and validation data read; output: the tuned model."""
        from airflow_cortex.sql.statements import create_statement
        from airflow_cortex.utils.lineage import finetune_lineage

        attempt = self._attempt
        model = ((attempt.result if attempt else None) or {}).get("model")
        job_id = attempt.job_id if attempt else None
        data = [self.training_data_query, self.validation_data_query]
        return finetune_lineage(self.hook, data, model, job_id, lambda: create_statement(self._request()))
