"""FINETUNE outputs as Snowflake published them, each kept verbatim with where it was found.

Every answer here is fed through the provider's real parsers, the hook (over the connector, the
emulator replaying the recorded text), the reattach rules and the links by
``tests/test_conformance.py``. Where two sources show different shapes, both are here and both
must work. Sources (read 2026-11-26):

- DOCS_DESCRIBE: https://docs.snowflake.com/en/sql-reference/functions/finetune-describe
- ML_PYTHON_TESTS: snowflake-ml-python, ``snowflake/cortex/finetune_test.py`` (Snowflake's own
  client's tests, commit 11027d30a9070b9c9b81c8e4fe6c3ff7317cfd3c)
- ML_PYTHON_CLIENT: the same repository, ``snowflake/cortex/_finetune.py`` (status strings;
  its ``Finetune.create`` docstring names a stage path to JSONL data as a third form)
- CREATE_PAGE: https://docs.snowflake.com/en/sql-reference/functions/finetune-create (its examples,
  as kept in ``shared/reference/finetune-create-seed.txt``)
- ARCTIC_GUIDE: https://docs.snowflake.com/en/user-guide/snowflake-cortex/arctic-extract-finetuning
"""

from __future__ import annotations

DOCS_DESCRIBE = "https://docs.snowflake.com/en/sql-reference/functions/finetune-describe"
ML_PYTHON_TESTS = (
    "snowflake-ml-python snowflake/cortex/finetune_test.py@11027d30a9070b9c9b81c8e4fe6c3ff7317cfd3c"
)
CREATE_PAGE = "https://docs.snowflake.com/en/sql-reference/functions/finetune-create"
ARCTIC_GUIDE = "https://docs.snowflake.com/en/user-guide/snowflake-cortex/arctic-extract-finetuning"
ML_PYTHON_CLIENT = (
    "snowflake-ml-python snowflake/cortex/_finetune.py@11027d30a9070b9c9b81c8e4fe6c3ff7317cfd3c"
)

#: DESCRIBE answers: (name, source, verbatim text, what the provider must read from it).
DESCRIBE = [
    (
        "docs-running-minimal-0",
        DOCS_DESCRIBE,
        '{"id":"CortexFineTuningWorkflow_6556e15c-8f12-4d94-8cb0-87e6f2fd2299","progress":0.0,"status":"IN_PROGRESS"}',
        {"status": "IN_PROGRESS", "progress": 0.0, "model": None, "finished": False},
    ),
    (
        "docs-running-minimal-333",
        DOCS_DESCRIBE,
        '{"id":"CortexFineTuningWorkflow_6556e15c-8f12-4d94-8cb0-87e6f2fd2299","progress":0.333,"status":"IN_PROGRESS"}',
        {"status": "IN_PROGRESS", "progress": 0.333, "model": None, "finished": False},
    ),
    (
        # The page's example lacks the comma before "validation_data" (a typo on the page: the
        # function returns an OBJECT). Kept verbatim; the test reads it with the comma restored.
        "docs-success-bare-model-name",
        DOCS_DESCRIBE,
        """{
"base_model":"mistral-7b",
"created_on":1717004388348,
"finished_on":1717004691577,
"id":"CortexFineTuningWorkflow_6556e15c-8f12-4d94-8cb0-87e6f2fd2299",
"model":"my_tuned_model",
"progress":1.0,
"status":"SUCCESS",
"training_data":"SELECT prompt, completion FROM train",
"trained_tokens":2670734,
"training_result":{"validation_loss":1.0138969421386719,"training_loss":0.6477728401547047}
"validation_data":""
}""",
        {"status": "SUCCESS", "model": "my_tuned_model", "trained_tokens": 2670734, "finished": True},
    ),
    (
        "ml-python-success-mixed-case-model",
        ML_PYTHON_TESTS,
        '{"base_model": "llama3-8b", "created_on": 1728688216077, "finished_on": 1728688392137, '
        '"id": "CortexFineTuningWorkflow_4dbc8970-65d8-44b8-9054-da818c1593dd", '
        '"model": "CFT_DB.TASTY_EMAIL.test_api_1", "progress": 1.0, "status": "SUCCESS", '
        '"training_data": "select MODIFIED_BODY as PROMPT, GOLDEN_JSON as COMPLETION from '
        'EMAIL_MODIFIED_WITH_RESPONSE_GOLDEN_10K_JSON where id % 10 = 0", "trained_tokens": 377100, '
        '"training_result": {"validation_loss": 0.8828646540641785, "training_loss": 0.8691850564418695}, '
        '"validation_data": ""}',
        {
            "status": "SUCCESS",
            "model": "CFT_DB.TASTY_EMAIL.test_api_1",
            "trained_tokens": 377100,
            "finished": True,
        },
    ),
    (
        "ml-python-error-trailing-semicolon",
        ML_PYTHON_TESTS,
        '{"base_model": "llama3-8b", "created_on": 1728670992861, "error": {"code": "INVALID_PARAMETER_VALUE", '
        '"message": "Failed to query input data for Fine-tuning. Failed to execute query: SELECT \\"PROMPT\\", '
        '\\"COMPLETION\\" FROM (select MODIFIED_BODY as PROMPT, GOLDEN_JSON as COMPLETION from '
        "EMAIL_MODIFIED_WITH_RESPONSE_GOLDEN_10K_JSON where id % 10 = 0;). 001003 (42000): "
        "01b79faf-0003-dbfd-0022-b7876037dabe: SQL compilation error:\\nsyntax error line 1 at position "
        '161 unexpected \';\'."}, "finished_on": 1728670994015, '
        '"id": "CortexFineTuningWorkflow_54cfb2bb-ff69-4d5a-8513-320ba3fdb258", "progress": 0.0, '
        '"status": "ERROR", "training_data": "select MODIFIED_BODY as PROMPT, GOLDEN_JSON as COMPLETION from '
        'EMAIL_MODIFIED_WITH_RESPONSE_GOLDEN_10K_JSON where id % 10 = 0;", "validation_data": ""}',
        {"status": "ERROR", "model": None, "error_code": "INVALID_PARAMETER_VALUE", "finished": True},
    ),
]

#: SHOW answers: (name, source, verbatim text, job ids and statuses).
SHOW = [
    (
        "ml-python-show-minimal",
        ML_PYTHON_TESTS,
        '[{"id": "1", "status": "SUCCESS"}, {"id": "2", "status": "ERROR"}]',
        [("1", "SUCCESS"), ("2", "ERROR")],
    ),
]

#: CANCEL's answer, as the client recognises it (``result.startswith(...)``).
CANCEL_PREFIX = ("ml-python-cancel", ML_PYTHON_CLIENT, "Canceled Cortex Fine-tuning job: ")

#: Status strings: the client's docstring names RUNNING where the reference pages say IN_PROGRESS.
STATUSES = (ML_PYTHON_CLIENT, ("PENDING", "RUNNING", "SUCCESS", "ERROR", "CANCELLED"))

#: CREATE calls as published: (name, source, the arguments after 'CREATE'). The arctic-extract
#: example is kept as the page shows it apart from one typo (it closes 'arctic-extract with a
#: backtick); its model name starts with '@', which only that guide writes.
CREATE = [
    (
        "create-page-with-validation",
        CREATE_PAGE,
        (
            "my_tuned_model",
            "mistral-7b",
            "SELECT prompt, completion FROM train",
            "SELECT prompt, completion FROM validation",
        ),
    ),
    (
        "create-page-without-validation",
        CREATE_PAGE,
        ("my_tuned_model", "mistral-7b", "SELECT prompt, completion FROM train"),
    ),
    (
        "arctic-extract-guide-datasets",
        ARCTIC_GUIDE,
        (
            "@database.schema.model_name",
            "arctic-extract",
            "snow://dataset/training_ds/versions/2",
            "snow://dataset/validation_ds/versions/4",
        ),
    ),
    ("ml-python-stage-jsonl", ML_PYTHON_CLIENT, ("tuned", "llama3.1-8b", "@pairs_stage/train.jsonl")),
]
