-- Held-out pairs: every fifth ticket never enters training.
SELECT
    question AS prompt,
    answer   AS completion
FROM support_tickets
WHERE rating >= 4
  AND MOD(ticket_id, 5) = 0
