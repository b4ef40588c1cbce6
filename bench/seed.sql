-- Seeds a benchmark database (already migrated) with:
--   10,000 products with predictable ids b0000000-0000-7000-8000-<n>, plenty of stock;
--   64 customers c0000000-0000-7000-8000-<n>;
--   :mercato_orders draft orders for mercato (ids d...-<n>) and :pgbench_orders for pgbench
--   (ids e...-<n>), each with three lines; products chosen by :'mode'
--   ('uniform' over all products, or 'hot': 90 % of orders carry one of products 1-5).
-- psql -v mercato_orders=N -v pgbench_orders=N -v mode=uniform -f seed.sql
\set ON_ERROR_STOP on
BEGIN;
TRUNCATE orders_lines, orders_orders, catalog_reservations, catalog_stock_adjustments,
         payments_payments, platform_outbox, platform_idempotency_keys, catalog_search_docs,
         catalog_product_vectors,
         catalog_products,
         customers_customers;

INSERT INTO catalog_products
SELECT 'b0000000-0000-7000-8000-' || lpad(n::text, 12, '0'), 'BENCH-' || n, 'Bench product ' || n,
       'A product for the benchmark.', 500 + (n % 50) * 100, 'EUR', 250, true,
       100000000, 0, 0, now(), now(), 1
FROM generate_series(1, 10000) AS n;

INSERT INTO catalog_stock_adjustments
SELECT 'a0000000-0000-7000-8000-' || lpad(n::text, 12, '0'),
       'b0000000-0000-7000-8000-' || lpad(n::text, 12, '0'), 100000000, 'initial stock',
       'bench', 100000000, now()
FROM generate_series(1, 10000) AS n;

INSERT INTO customers_customers
SELECT 'c0000000-0000-7000-8000-' || lpad(n::text, 12, '0'), 'bench' || n || '@example.com',
       'Bench ' || n, 'unused', 'customer', true, now(), 1
FROM generate_series(1, 64) AS n;

CREATE TEMP TABLE pool (prefix text, n int);
INSERT INTO pool SELECT 'd0000000-0000-7000-8000-', n FROM generate_series(1, :mercato_orders) n;
INSERT INTO pool SELECT 'e0000000-0000-7000-8000-', n FROM generate_series(1, :pgbench_orders) n;

INSERT INTO orders_orders
SELECT prefix || lpad(n::text, 12, '0'), 'c0000000-0000-7000-8000-' || lpad((1 + n % 64)::text, 12, '0'),
       'draft', 'EUR', 0, 0, 0, 0, 0, NULL, 0,
       '{"name":"","street":"Hauptstrasse 1","city":"Berlin","postal_code":"10115","region":"","country":"DE"}',
       '{"name":"","street":"Hauptstrasse 1","city":"Berlin","postal_code":"10115","region":"","country":"DE"}',
       NULL, NULL, NULL, now(), now(), NULL, 1
FROM pool;

-- Three distinct products per order: either a hot one (1-5) plus two others, or three uniform
-- (one from each third of the catalog, so they never collide). The picks are made in the select
-- list of a plain join with the positions, where random() runs once per row. The earlier LATERAL
-- subquery referred to the outer row only in a filter, so its picks were computed once for the
-- whole pool: every draft carried the same three products (and in 'hot' all the same hot one).
INSERT INTO orders_lines
SELECT prefix || lpad(n::text, 12, '0'), 'b0000000-0000-7000-8000-' || lpad(product::text, 12, '0'),
       pos, 'BENCH-' || product, 'Bench product ' || product, 500 + (product % 50) * 100, 1, 250
FROM (
  SELECT o.prefix, o.n, pos,
         CASE pos
           WHEN 0 THEN CASE WHEN :'mode' = 'hot' AND random() < 0.9
                            THEN 1 + floor(random() * 5)::int
                            ELSE 6 + floor(random() * 3331)::int END
           WHEN 1 THEN 3337 + floor(random() * 3332)::int
           ELSE 6669 + floor(random() * 3332)::int
         END AS product
  FROM pool o CROSS JOIN generate_series(0, 2) AS pos
) picks;
COMMIT;
ANALYZE;
