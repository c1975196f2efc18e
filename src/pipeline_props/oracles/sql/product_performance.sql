-- product_performance (contract section 5), one row per product_id.
-- return_rate = round(units_returned / units_sold, 4), half away from zero, on
-- exact integers: floor((2 * 10000 * returned + sold) / (2 * sold)) in units of
-- 0.0001 (both counts are >= 0). DuckDB's DECIMAL / DECIMAL goes to DOUBLE,
-- so no division of decimals appears here. Units stay below 1e12 for 10
-- million rows, so the rate in units of 0.0001 fits DECIMAL(18, 0).
WITH units AS (
    SELECT
        product_id,
        sum(CASE WHEN quantity > 0 THEN quantity ELSE 0 END) AS units_sold,
        -sum(CASE WHEN quantity < 0 THEN quantity ELSE 0 END) AS units_returned,
        sum(amount_usd) AS net_revenue_usd
    FROM accepted
    GROUP BY product_id
)
SELECT
    product_id, units_sold, units_returned, net_revenue_usd,
    CASE WHEN units_sold = 0 THEN NULL
         ELSE CAST((20000 * units_returned + units_sold) // (2 * units_sold) AS DECIMAL(18, 0))
              * CAST('0.0001' AS DECIMAL(4, 4))
    END AS return_rate
FROM units
ORDER BY ALL NULLS FIRST;
