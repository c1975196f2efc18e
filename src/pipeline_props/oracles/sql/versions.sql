-- Duplicates (contract section 3) among the candidates marked by facts.sql.
--
-- Rows of records are picked by the flag in facts, not by a join: a join
-- carrying all of records' text costs more than the whole comparison.
CREATE OR REPLACE TEMP TABLE candidates AS
SELECT r.* EXCLUDE (raw)
FROM records AS r POSITIONAL JOIN facts AS f
WHERE f.verdict = 'candidate';

-- versions: the verdict on every candidate's event: conflict unless all its
-- versions are identical after normalisation (decimals by value, text as
-- written, event_time as the UTC instant: every value has min = max), else
-- one version is kept and the others are copies (duplicates).
CREATE OR REPLACE TEMP TABLE versions AS
WITH rows AS (
    SELECT * FROM checked_rows('candidates')
), events AS (
    SELECT
        event_id,
        (min(order_id) = max(order_id) AND min(customer_id) = max(customer_id)
         AND min(product_id) = max(product_id) AND min(category) = max(category)
         AND min(region) = max(region) AND min(channel) = max(channel)
         AND min(quantity) = max(quantity) AND min(unit_price) = max(unit_price)
         AND min(discount) = max(discount) AND min(currency) = max(currency)
         AND min(event_us) = max(event_us)) AS identical,
        min(rid) AS kept_rid
    FROM rows
    GROUP BY event_id
)
SELECT
    r.rid,
    CASE WHEN NOT e.identical THEN 'conflict' WHEN r.rid = e.kept_rid THEN 'kept' ELSE 'copy' END AS verdict
FROM rows AS r
JOIN events AS e USING (event_id);

UPDATE facts SET verdict = v.verdict FROM versions AS v WHERE facts.rid = v.rid;
