-- History for the original design's benchmark: one seller, its shop mapping, 5 hot SKUs with
-- plenty of stock, 20 cold products, and `load_history(n)` to bulk-load n past orders.
-- Same shape as CreatorFlow's own benchmark (bench/webhooks.py), so both sides carry the same
-- history: past orders spread over the year that ended 8 days ago, delivered (1 in 10) or
-- completed, one line of 1-3 units on a cold product each.
--
-- The seller, shop and products have fixed ids so that bench/original/order.sql can name them:
--   creator            00000000-0000-4000-8000-0000000000c1
--   TikTok shop id     bench-shop
--   hot SKU n (1..5)   00000000-0000-4000-8000-00000000000n   (10,000,000 units, reorder point 100)
--   cold product n     00000000-0000-4000-8000-0000000001nn   (500 units, reorder point 10)
--
-- Triggers are switched off while loading (session_replication_role = replica, transaction-
-- local): history is data that already exists, not a stream of new orders. The per-row triggers
-- would otherwise recompute the dashboard over the whole history once per loaded row.

CREATE OR REPLACE FUNCTION bench_product_id(number INTEGER) RETURNS UUID
LANGUAGE sql IMMUTABLE AS $$
    SELECT ('00000000-0000-4000-8000-' || lpad(number::text, 12, '0'))::uuid
$$;

CREATE OR REPLACE FUNCTION load_history(p_orders INTEGER) RETURNS VOID AS $$
DECLARE
    creator UUID := '00000000-0000-4000-8000-0000000000c1';
BEGIN
    PERFORM set_config('session_replication_role', 'replica', true);

    INSERT INTO creator_shop_mappings (creator_id, tiktok_shop_id) VALUES (creator, 'bench-shop');

    INSERT INTO inventory (id, creator_id, name, available_quantity, reorder_point, unit_cost)
    SELECT bench_product_id(n), creator, 'Hot ' || n, 10000000, 100, 4.00
    FROM generate_series(1, 5) AS n;

    INSERT INTO inventory (id, creator_id, name, available_quantity, reorder_point, unit_cost)
    SELECT bench_product_id(100 + n), creator, 'Cold ' || n, 500, 10, 2.00
    FROM generate_series(1, 20) AS n;

    INSERT INTO orders (creator_id, tiktok_order_id, status, total_amount, order_data, created_at, updated_at)
    SELECT creator, 'HIST-' || g,
           CASE WHEN g % 10 = 0 THEN 'delivered' ELSE 'completed' END,
           (10 + g % 50)::numeric,
           jsonb_build_object('order_id', 'HIST-' || g,
                              'status', CASE WHEN g % 10 = 0 THEN 'delivered' ELSE 'completed' END,
                              'total_amount', 10 + g % 50),
           placed, placed + interval '5 days'
    FROM generate_series(1, p_orders) AS g,
         LATERAL (SELECT now() - interval '8 days'
                         - make_interval(secs => g * 31536000.0 / p_orders)) AS t(placed);

    INSERT INTO order_items (order_id, product_id, quantity, price)
    SELECT o.id, bench_product_id(101 + (hashtext(o.tiktok_order_id) & 1023) % 20),
           1 + (hashtext(o.tiktok_order_id) & 1023) % 3, 10.00
    FROM orders o
    WHERE o.creator_id = creator;
END;
$$ LANGUAGE plpgsql;
