-- customer_summary (contract section 5), one row per customer_id.
SELECT
    customer_id,
    min(sale_date) AS first_purchase_date,
    max(sale_date) AS last_purchase_date,
    count(DISTINCT order_id) AS order_count,
    sum(amount_usd) AS net_revenue_usd
FROM accepted
GROUP BY customer_id
ORDER BY ALL NULLS FIRST;
