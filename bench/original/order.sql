-- pgbench script: one new order through the original design, the way its webhook function
-- (supabase/functions/process-tiktok-webhook) handles an ORDER_STATUS_CHANGE for a new order:
-- find the creator from the shop, upsert the order, then for each line insert the item and call
-- reserve_inventory, and record the sync operation. The specification does these as separate
-- PostgREST calls (one transaction each); here they are one transaction, which is cheaper, so
-- the figure is the design's best case. Its function does not itself insert order_items, but its
-- velocity trigger reads them, so the item rows are written as any working deployment must.
--
-- 1-3 lines on distinct hot SKUs in ascending order, 1-2 units each, 10.00 a unit.
-- Ids come from bench/original/history.sql.

\set lines random(1, 3)
\set sku1 random(1, 6 - :lines)
\set quantity1 random(1, 2)
\set quantity2 0
\set quantity3 0
\if :lines >= 2
\set sku2 random(:sku1 + 1, 7 - :lines)
\set quantity2 random(1, 2)
\endif
\if :lines = 3
\set sku3 random(:sku2 + 1, 5)
\set quantity3 random(1, 2)
\endif
\set total 10 * (:quantity1 + :quantity2 + :quantity3)

BEGIN;

SELECT creator_id AS creator FROM creator_shop_mappings WHERE tiktok_shop_id = 'bench-shop' \gset

INSERT INTO orders (creator_id, tiktok_order_id, status, total_amount, order_data, updated_at)
VALUES (':creator', 'LIVE-' || gen_random_uuid(), 'awaiting_shipment', :total,
        jsonb_build_object('status', 'awaiting_shipment', 'total_amount', :total, 'lines', :lines), NOW())
ON CONFLICT (creator_id, tiktok_order_id) DO UPDATE SET
    status = EXCLUDED.status,
    total_amount = EXCLUDED.total_amount,
    order_data = EXCLUDED.order_data,
    updated_at = EXCLUDED.updated_at
RETURNING id AS order_uuid, tiktok_order_id AS order_number \gset

INSERT INTO order_items (order_id, product_id, quantity, price)
VALUES (':order_uuid', bench_product_id(:sku1), :quantity1, 10.00);
SELECT reserve_inventory(':creator', bench_product_id(:sku1), :quantity1, ':order_number');

\if :lines >= 2
INSERT INTO order_items (order_id, product_id, quantity, price)
VALUES (':order_uuid', bench_product_id(:sku2), :quantity2, 10.00);
SELECT reserve_inventory(':creator', bench_product_id(:sku2), :quantity2, ':order_number');
\endif

\if :lines = 3
INSERT INTO order_items (order_id, product_id, quantity, price)
VALUES (':order_uuid', bench_product_id(:sku3), :quantity3, 10.00);
SELECT reserve_inventory(':creator', bench_product_id(:sku3), :quantity3, ':order_number');
\endif

INSERT INTO sync_operations (creator_id, operation_type, source_system, target_system, status,
                             entity_count, processed_count, metadata)
VALUES (':creator', 'webhook_processing', 'tiktok_shop', 'creatorflow', 'completed', 1, 1,
        jsonb_build_object('webhook_type', 'ORDER_STATUS_CHANGE', 'tiktok_order_id', ':order_number'));

END;
