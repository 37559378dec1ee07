"""The emulator checks what it receives by Snowflake's documented rules, with code of its own.

Each test plants a bug in the provider's validation (it lets a bad argument through) and shows
that the emulator still refuses the CREATE, as Snowflake would; while the emulator validated
with the provider's own functions, such a bug passed both and no test could see it.
"""

from __future__ import annotations

import pytest

from airflow_cortex.exceptions import CortexFineTuneError, CortexValidationError
from airflow_cortex.hooks.finetune import CortexFineTuneHook
from airflow_cortex.sql import request as request_module
from airflow_cortex.sql.names import IdentifierPart, ModelName

TRAIN = "SELECT prompt, completion FROM train"


def _accept_any_name(value: object, *args: object, **kwargs: object) -> ModelName:
    text = str(value)
    return ModelName(raw=text, parts=(IdentifierPart(text, quoted=False),))


def _accept_any_options(options: object, max_epochs: object) -> dict[str, object]:
    merged = dict(options or {})  # type: ignore[call-overload]
    if max_epochs is not None:
        merged["max_epochs"] = max_epochs
    return merged


@pytest.mark.parametrize(
    ("model_name", "refusal"),
    [
        ("1st_model", "not a valid identifier"),
        ("a.b.c.d", "CREATE"),
        ("my model", "unexpected ' ' at position 2"),
        ("x" * 256, "longer than"),
    ],
)
def test_a_bad_model_name_the_provider_let_through_is_refused(
    seeded, cortex_connection, monkeypatch, model_name, refusal
):
    hook = CortexFineTuneHook(snowflake_conn_id=cortex_connection)
    with pytest.raises(CortexValidationError, match="model_name"):  # the provider, unbroken
        hook.create_finetune_job(model_name, "llama3.1-8b", TRAIN)
    monkeypatch.setattr(request_module, "parse_model_name", _accept_any_name)
    with pytest.raises(CortexFineTuneError, match=refusal) as refused:
        hook.create_finetune_job(model_name, "llama3.1-8b", TRAIN)
    assert not isinstance(refused.value, CortexValidationError)  # Snowflake's answer, not ours
    assert seeded.engine.job_count == 0


@pytest.mark.parametrize(
    ("options", "max_epochs", "refusal"),
    [
        (None, 11, "max_epochs must be an integer from 1 to 10"),
        (None, 0, "max_epochs must be an integer from 1 to 10"),
        ({"max_epochs": 2.5}, None, "max_epochs must be an integer"),
        ({"learning_rate": 0.1}, None, "unknown option"),
    ],
)
def test_bad_options_the_provider_let_through_are_refused(
    seeded, cortex_connection, monkeypatch, options, max_epochs, refusal
):
    hook = CortexFineTuneHook(snowflake_conn_id=cortex_connection)
    with pytest.raises(CortexValidationError):  # the provider, unbroken
        hook.create_finetune_job("m", "llama3.1-8b", TRAIN, options=options, max_epochs=max_epochs)
    monkeypatch.setattr(request_module, "normalize_options", _accept_any_options)
    with pytest.raises(CortexFineTuneError, match=refusal) as refused:
        hook.create_finetune_job("m", "llama3.1-8b", TRAIN, options=options, max_epochs=max_epochs)
    assert not isinstance(refused.value, CortexValidationError)
    assert seeded.engine.job_count == 0
