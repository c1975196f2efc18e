-- Duplicates (contract section 3) among the candidates marked by facts.sql.
--
-- candidates: the valid rows whose event id hash repeats, with their
-- normalised values (facts keeps them for these rows only).
CREATE OR REPLACE TEMP VIEW candidates AS
SELECT * FROM facts WHERE candidate;

-- versions: the verdict on every candidate's event: conflict unless all its
-- versions are identical after normalisation (decimals by value, text as
-- written, event_time as the UTC instant: every value has min = max), else
-- one version is kept and the others are copies (duplicates).
CREATE OR REPLACE TEMP TABLE versions AS
WITH events AS (
    SELECT
        event_id,
        (min(order_id) = max(order_id) AND min(customer_id) = max(customer_id)
         AND min(product_id) = max(product_id) AND min(category) = max(category)
         AND min(region_code) = max(region_code) AND min(channel) = max(channel)
         AND min(quantity) = max(quantity) AND min(unit_price) = max(unit_price)
         AND min(discount) = max(discount) AND min(currency) = max(currency)
         AND min(event_us) = max(event_us)) AS identical,
        min(rid) AS kept_rid
    FROM candidates
    GROUP BY event_id
)
SELECT
    c.rid,
    CASE WHEN NOT e.identical THEN 'conflict' WHEN c.rid = e.kept_rid THEN 'kept' ELSE 'copy' END AS verdict
FROM candidates AS c
JOIN events AS e USING (event_id);
