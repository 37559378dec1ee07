"""The operator's pre-flight and CREATE: what one try checks, its profile of the data, the
verdict, and the statement that pays.

Decided once per try. Over the SQL API the profile runs on another thread from the start of a
first try, while the task's own thread reads Airflow's task state and records the intent to
submit (see :meth:`~airflow_cortex.hooks.finetune.CortexFineTuneHook.off_thread`), so the checks
cost the task the longer of those waits, not their sum.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexBudgetExceededError
from airflow_cortex.preflight.settings import PreflightPlan, require_profiled_training, validate_budget

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_cortex.hooks.finetune import CortexFineTuneHook
    from airflow_cortex.jobcontrol.records import TaskRecords
    from airflow_cortex.preflight.profile import DataProfile
    from airflow_cortex.preflight.settings import PreflightChecks
    from airflow_cortex.sql.request import FineTuneRequest
    from airflow_cortex.utils.offthread import OffThread


def plan_checks(
    request: FineTuneRequest, checks: PreflightChecks | None, max_trained_tokens: object, log: Any
) -> PreflightPlan | None:
    """What the pre-flight checks and the budget need profiled, or ``None`` if nothing is."""
    epochs = request.options.get("max_epochs")
    budget = validate_budget(max_trained_tokens, epochs)
    if checks is None and budget is None:
        log.info("Pre-flight data checks are off (preflight_checks=False)")
        return None
    unprofiled = [(name, source) for name, source in request.data_sources if not source.is_query]
    for parameter, source in unprofiled:
        log.warning(
            "Pre-flight data checks skip %s: it is %s, which FINETUNE reads itself and this provider "
            "cannot profile with a query (Snowflake checks it when the job starts)",
            parameter,
            source.describe(),
        )
    if unprofiled and unprofiled[0][0] == "training_data_query":
        require_profiled_training(budget, unprofiled[0][1])
        return None
    return PreflightPlan(checks, epochs, budget, [name for name, _ in unprofiled])


class DataChecks:
    """One try's pre-flight: its plan (``None``: nothing to check) and its profile of the data,
    under way on another thread where the transport allows."""

    def __init__(
        self, hook: CortexFineTuneHook, request: FineTuneRequest, plan: PreflightPlan | None
    ) -> None:
        self.hook = hook
        self.request = request
        self.plan = plan
        self._profiling: OffThread[list[DataProfile]] | None = None
        if plan is not None:
            self._profiling = hook.off_thread(self._profile, "cortex-preflight")

    def _profile(self) -> list[DataProfile]:
        assert self.plan is not None
        return self.hook.profile_training_data(self.request, self.plan.chars_per_token)

    def before_create(self, records: TaskRecords, ti: Any, log: Any) -> dict[str, Any] | None:
        """Put the intent to submit on record (while the profile runs), then the verdict."""
        try:
            records.record_intent(time.time(), ti.try_number)
        finally:
            self.join()
        return self.verdict(ti, log)

    def join(self) -> None:
        """Wait for the profile under way, if any: no statement is left running behind the try."""
        if self._profiling is not None:
            self._profiling.join()

    def verdict(self, ti: Any, log: Any) -> dict[str, Any] | None:
        """The checks and the budget on the profiled data: raise before CREATE if the data would
        waste money. Returns the estimate, which the caller pushes with the job id; a budget that
        fails pushes it here, as the reason for failing."""
        from airflow_cortex.preflight.verdict import check_budget, evaluate

        plan = self.plan
        if plan is None:
            return None
        profiles = self._profiling.result() if self._profiling is not None else self._profile()
        estimate = evaluate(profiles, self.request.base_model, plan.epochs, plan.checks, plan.unprofiled)
        log.info("%s", estimate.describe())
        for note in estimate.notes:
            log.info("Estimate note: %s", note)
        report = estimate.to_dict()
        try:
            check_budget(estimate, plan.budget)
        except CortexBudgetExceededError:
            ti.xcom_push(key="estimate", value=report)  # the figures the failure names
            raise
        if plan.budget is not None:
            log.info(
                "Within budget: %s of max_trained_tokens=%s",
                f"{estimate.trained_tokens:,}",
                f"{plan.budget:,}",
            )
        return report


def start_data_checks(
    hook: CortexFineTuneHook,
    request: FineTuneRequest,
    checks: PreflightChecks | None,
    max_trained_tokens: object,
    log: Any,
) -> DataChecks:
    """Plan this try's pre-flight and start its profile."""
    return DataChecks(hook, request, plan_checks(request, checks, max_trained_tokens, log))


def create_job(
    hook: CortexFineTuneHook,
    request: FineTuneRequest,
    estimate: dict[str, Any] | None,
    ti: Any,
    adopt: Callable[[str], str],
) -> str:
    """Send CREATE, ``adopt`` its job (XCom, owner record) and push the estimate.

    Over the SQL API the estimate is pushed while CREATE is on its way, so it lands before the
    job id without delaying it; the job is adopted even if that push failed, and the push's error
    is raised after. Over the connector, whose statements stay on this thread, the job id goes
    first: downstream tasks and people wait on it, while the estimate is for reading later.
    """
    creating = None
    if estimate is not None:
        creating = hook.off_thread(partial(hook.submit_finetune_request, request), "cortex-create")
    if creating is not None:
        try:
            ti.xcom_push(key="estimate", value=estimate)
        finally:
            job_id = adopt(creating.result())
        return job_id
    try:
        return adopt(hook.submit_finetune_request(request))
    finally:
        if estimate is not None:
            ti.xcom_push(key="estimate", value=estimate)
