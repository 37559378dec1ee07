-- rendered by Airflow: params and macros work here
SELECT review AS prompt, label AS completion
FROM reviews
WHERE rating >= {{ params.min_rating }}
  AND review_date <= '{{ ds }}'
