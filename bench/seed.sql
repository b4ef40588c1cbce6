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
         payments_payments, platform_outbox, platform_idempotency_keys, catalog_products,
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

-- three distinct products per order: either a hot one (1-5) plus two others, or three uniform
INSERT INTO orders_lines
SELECT o.prefix || lpad(o.n::text, 12, '0'), 'b0000000-0000-7000-8000-' || lpad(p.product::text, 12, '0'),
       p.pos, 'BENCH-' || p.product, 'Bench product ' || p.product, 500 + (p.product % 50) * 100, 1, 250
FROM pool o
CROSS JOIN LATERAL (
  SELECT pos, product FROM (
    SELECT 0 AS pos, CASE WHEN :'mode' = 'hot' AND random() < 0.9
                          THEN 1 + floor(random() * 5)::int
                          ELSE 6 + floor(random() * 3331)::int END AS product
    UNION ALL SELECT 1, 3337 + floor(random() * 3332)::int
    UNION ALL SELECT 2, 6669 + floor(random() * 3332)::int
  ) picks WHERE o.n > 0
) p;
COMMIT;
ANALYZE;
