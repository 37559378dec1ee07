-- This interval's training pairs, built by the build_training_sets task.
-- A template: Airflow renders it (macros, params) before the operator checks and sends it.
SELECT prompt, completion
FROM support_finetune_examples
WHERE run_key = '{{ data_interval_start | ds }}'
  AND split = 'train'
