SELECT review AS prompt, label AS completion
FROM reviews_holdout
