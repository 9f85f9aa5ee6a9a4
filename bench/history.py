"""Past orders for the benchmarks' sellers, bulk-inserted in SQL, with the rollups CreatorFlow keeps for them.

A seller's LIVE day runs on a database that has seen their earlier sales, and PostgreSQL plans its
statements with statistics gathered on it. ``history_insert`` gives each creator ``per_creator``
orders spread over the last year (first seen delivered or completed, so they hold no stock), one
to three units of one of the creator's ``products`` each, and rebuilds from those rows the rollups
``orders.rollups`` keeps (UTC quarter hours and minutes; every past order paid and live, none short).
The caller runs ``VACUUM ANALYZE`` afterwards.
"""

ORDERS = """
    INSERT INTO orders_order (creator_id, shop_id, external_id, status, total_amount, currency, flags,
                              placed_at, paid_at, shipped_at, cancelled_at, completed_at, tiktok_updated_at,
                              created_at, updated_at)
    SELECT c.creator_id, c.shop_id, 'HIST-' || g, CASE WHEN g %% 10 = 0 THEN 'DELIVERED' ELSE 'COMPLETED' END,
           (10 + g %% 50)::numeric(14, 2), 'USD', '[]'::jsonb,
           p, p, p + interval '1 day', NULL, CASE WHEN g %% 10 = 0 THEN NULL ELSE p + interval '5 days' END,
           p + interval '5 days', now(), now()
    FROM unnest(%(creators)s::bigint[], %(shops)s::bigint[]) AS c(creator_id, shop_id),
         generate_series(1, %(count)s) AS g,
         LATERAL (SELECT now() - interval '8 days' - make_interval(secs => g * 31536000.0 / %(count)s)) AS t(p)
"""

ITEMS = """
    WITH products AS (
        SELECT creator_id, array_agg(product_id ORDER BY product_id) AS ids
        FROM unnest(%(product_creators)s::bigint[], %(products)s::bigint[]) AS x(creator_id, product_id)
        GROUP BY creator_id
    )
    INSERT INTO orders_orderitem (order_id, product_id, quantity, unit_price)
    SELECT o.id, p.ids[1 + o.id %% cardinality(p.ids)], 1 + o.id %% 3, 10.00
    FROM orders_order o JOIN products p ON p.creator_id = o.creator_id
    WHERE o.creator_id = ANY(%(creators)s::bigint[])
"""

BUCKETS = """
    INSERT INTO orders_orderstatsbucket (creator_id, start, placed_count, shipped_count, processing_seconds, paid_amount)
    SELECT coalesce(p.creator_id, s.creator_id), coalesce(p.start, s.start), coalesce(p.n, 0), coalesce(s.n, 0),
           coalesce(s.seconds, 0), coalesce(p.paid, 0)
    FROM (SELECT creator_id, date_bin('15 minutes', placed_at, TIMESTAMPTZ '2000-01-01 00:00+00') AS start,
                 count(*) AS n, sum(total_amount) AS paid
          FROM orders_order WHERE creator_id = ANY(%(creators)s::bigint[]) GROUP BY 1, 2) p
    FULL OUTER JOIN
         (SELECT creator_id, date_bin('15 minutes', shipped_at, TIMESTAMPTZ '2000-01-01 00:00+00') AS start,
                 count(*) AS n, sum(greatest(0, floor(extract(epoch FROM shipped_at - placed_at))))::bigint AS seconds
          FROM orders_order WHERE creator_id = ANY(%(creators)s::bigint[]) AND shipped_at IS NOT NULL GROUP BY 1, 2) s
    ON p.creator_id = s.creator_id AND p.start = s.start
"""

MINUTES = """
    INSERT INTO orders_orderminute (creator_id, minute, orders, units, paid_amount, short_orders, short_units)
    SELECT o.creator_id, date_trunc('minute', o.placed_at), count(*), sum(i.units), sum(o.total_amount), 0, 0
    FROM orders_order o JOIN (SELECT order_id, sum(quantity) AS units FROM orders_orderitem GROUP BY 1) i
         ON i.order_id = o.id
    WHERE o.creator_id = ANY(%(creators)s::bigint[]) GROUP BY 1, 2
"""

TOTALS = """
    INSERT INTO orders_ordertotals (creator_id, orders_count, completed_revenue, short_count, short_units)
    SELECT creator_id, count(*), coalesce(sum(total_amount) FILTER (WHERE status = 'COMPLETED'), 0), 0, 0
    FROM orders_order WHERE creator_id = ANY(%(creators)s::bigint[]) GROUP BY 1
"""


def history_insert(cursor, *, shops: dict[int, int], products: dict[int, list[int]], per_creator: int) -> None:
    """Insert ``per_creator`` past orders for each creator (``shops``: creator id → shop id) and their rollups.

    ``products`` gives, per creator, the products their past orders bought. Creators are expected to
    have no orders yet (their totals row is inserted, not added to).
    """
    if per_creator <= 0 or not shops:
        return
    creators = sorted(shops)
    pairs = [(creator, product) for creator in creators for product in products[creator]]
    values = {
        "creators": creators,
        "shops": [shops[creator] for creator in creators],
        "count": per_creator,
        "product_creators": [creator for creator, _ in pairs],
        "products": [product for _, product in pairs],
    }
    for statement in (ORDERS, ITEMS, BUCKETS, MINUTES, TOTALS):
        cursor.execute(statement, values)
