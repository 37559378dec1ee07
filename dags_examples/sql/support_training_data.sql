-- Training pairs for the support assistant: every resolved ticket whose answer was rated helpful.
-- Rendered by Airflow (it is a template), so macros such as {{ ds }} work here.
SELECT
    question AS prompt,
    answer   AS completion
FROM support_tickets
WHERE rating >= 4
  AND MOD(ticket_id, 5) <> 0
