-- Validation pairs: scored during training (validation loss), never trained on.
SELECT prompt, completion
FROM support_finetune_examples
WHERE run_key = '{{ data_interval_start | ds }}'
  AND split = 'validation'
