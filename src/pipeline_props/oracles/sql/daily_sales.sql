-- daily_sales (contract section 5), one row per (sale_date, region, category).
SELECT
    sale_date, [{{REGIONS}}][region_code] AS region, category,
    sum(CASE WHEN quantity > 0 THEN amount_usd ELSE 0 END) AS gross_revenue_usd,
    -sum(CASE WHEN quantity < 0 THEN amount_usd ELSE 0 END) AS returns_usd,
    sum(CASE WHEN quantity > 0 THEN amount_usd ELSE 0 END)
        + sum(CASE WHEN quantity < 0 THEN amount_usd ELSE 0 END) AS net_revenue_usd,
    sum(CASE WHEN quantity > 0 THEN quantity ELSE 0 END) AS units_sold,
    -sum(CASE WHEN quantity < 0 THEN quantity ELSE 0 END) AS units_returned,
    count(DISTINCT order_id) AS order_count,
    count(*) AS line_count
FROM accepted
GROUP BY sale_date, region_code, category
ORDER BY ALL NULLS FIRST;
