-- The original design: the Supabase/PostgreSQL order path that CreatorFlow replaced, as its
-- specification ("S003 - Supabase Real-Time Integration Specification") wrote it, made to run on
-- plain PostgreSQL so that pgbench can measure it. Tables, triggers and functions are copied as
-- written; only what does not parse or cannot run outside Supabase was changed, and every change
-- is marked "CHANGED" or "ADDED" below.
--
-- Dropped, because they exist only on Supabase (none of them is on the order path):
--   * `REFERENCES auth.users(id)` on every creator_id: the `auth` schema is Supabase's user store.
--     The column stays (UUID, same nullability); only the foreign key goes.
--   * `ALTER PUBLICATION supabase_realtime ADD TABLE ...` (four times): the publication belongs to
--     Supabase's Realtime server, which streams WAL changes to browsers. Nothing reads it here.
--     Its cost on Supabase (logical decoding of every change) is therefore NOT measured: these
--     figures are a lower bound for the original design.
--   * Row-level security policies calling auth.uid(): the specification names none for these
--     tables; any would need Supabase's JWT claims, and the service-role key the webhook
--     function uses bypasses RLS anyway.
--
-- Fixed, because it does not parse on PostgreSQL:
--   * `INDEX name (columns)` inside CREATE TABLE is MySQL syntax: each became a CREATE INDEX of
--     the same name and columns after its table.
--   * `reserve_inventory` sits inside the specification's TypeScript block; it is plain PL/pgSQL
--     and is copied unchanged.
--
-- Added, because the specification uses these tables and constraints without defining them:
--   * orders, order_items, inventory, inventory_reservations, creator_shop_mappings: only the
--     columns the triggers, `reserve_inventory` and the webhook function read or write, with the
--     types they imply (order_items.product_id = inventory.id, as the velocity query joins them;
--     reserve_inventory's p_order_id is TEXT, the TikTok order id).
--   * UNIQUE (creator_id, tiktok_order_id) on orders: the webhook function upserts with
--     `onConflict: 'creator_id,tiktok_order_id'`, which fails without it.
--   * A partial unique index on inventory_alerts (creator_id, product_id, alert_type) WHERE
--     status = 'active': `check_inventory_alerts` upserts with that ON CONFLICT target, which
--     fails without it.
--   * Indexes the specification does not name but any deployment would have (order_items by
--     order and by product, orders by creator and time, inventory by creator). They are generous
--     to the original design: without them the velocity query in `check_inventory_alerts` scans
--     all of order_items for every reservation. They cannot help the dashboard trigger, whose
--     aggregates read every order of the creator whatever the indexes.

CREATE EXTENSION IF NOT EXISTS pgcrypto;  -- gen_random_uuid() (built in since PostgreSQL 13)

-- ---------------------------------------------------------------------------------------------
-- Tables the specification uses but does not define (ADDED)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE creator_shop_mappings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id UUID NOT NULL,
    tiktok_shop_id TEXT NOT NULL UNIQUE
);

CREATE TABLE inventory (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),   -- the product id orders refer to
    creator_id UUID NOT NULL,
    name TEXT NOT NULL,
    available_quantity INTEGER NOT NULL DEFAULT 0,
    reserved_quantity INTEGER NOT NULL DEFAULT 0,
    reorder_point INTEGER NOT NULL DEFAULT 0,
    unit_cost NUMERIC NOT NULL DEFAULT 0,
    velocity_per_hour NUMERIC NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_inventory_creator ON inventory (creator_id);

CREATE TABLE orders (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id UUID NOT NULL,
    tiktok_order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    total_amount NUMERIC NOT NULL DEFAULT 0,
    order_data JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    UNIQUE (creator_id, tiktok_order_id)
);
CREATE INDEX idx_orders_creator_created ON orders (creator_id, created_at);

CREATE TABLE order_items (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id UUID NOT NULL REFERENCES orders(id),
    product_id UUID NOT NULL,
    quantity INTEGER NOT NULL,
    price NUMERIC NOT NULL
);
CREATE INDEX idx_order_items_order ON order_items (order_id);
CREATE INDEX idx_order_items_product ON order_items (product_id);

CREATE TABLE inventory_reservations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id UUID NOT NULL,
    product_id UUID NOT NULL,
    order_id TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    reserved_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMPTZ
);

-- ---------------------------------------------------------------------------------------------
-- Core real-time tables (as specified)
-- ---------------------------------------------------------------------------------------------

-- Real-time dashboard metrics table
CREATE TABLE dashboard_metrics (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id UUID NOT NULL,  -- CHANGED: REFERENCES auth.users(id) dropped (Supabase auth schema)
    metric_type TEXT NOT NULL,
    metric_key TEXT NOT NULL,
    metric_value NUMERIC NOT NULL,
    metadata JSONB DEFAULT '{}',
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    expires_at TIMESTAMPTZ,

    -- Composite unique constraint for upsert operations
    UNIQUE(creator_id, metric_type, metric_key)
);

-- System health metrics for real-time monitoring
CREATE TABLE system_health_metrics (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    component TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('nominal', 'warning', 'critical')),
    metrics JSONB NOT NULL DEFAULT '{}',
    error_message TEXT,
    measured_at TIMESTAMPTZ DEFAULT NOW(),
    creator_id UUID  -- CHANGED: REFERENCES auth.users(id) dropped
);
-- CHANGED: inline INDEX clauses (MySQL syntax) moved out of CREATE TABLE.
CREATE INDEX idx_system_health_component_measured ON system_health_metrics (component, measured_at DESC);
CREATE INDEX idx_system_health_creator ON system_health_metrics (creator_id, measured_at DESC);

-- Inventory alerts for critical stock notifications
CREATE TABLE inventory_alerts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id UUID NOT NULL,  -- CHANGED: REFERENCES auth.users(id) dropped
    product_id UUID NOT NULL,
    alert_type TEXT NOT NULL CHECK (alert_type IN ('low_stock', 'stockout', 'velocity_anomaly')),
    severity TEXT NOT NULL CHECK (severity IN ('warning', 'critical', 'emergency')),
    current_stock INTEGER,
    threshold INTEGER,
    velocity_per_hour NUMERIC,
    estimated_stockout_hours INTEGER,
    message TEXT,
    status TEXT DEFAULT 'active' CHECK (status IN ('active', 'acknowledged', 'resolved')),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    acknowledged_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ
);
CREATE INDEX idx_inventory_alerts_creator_status ON inventory_alerts (creator_id, status, created_at DESC);  -- CHANGED: was inline
-- ADDED: the arbiter index check_inventory_alerts' ON CONFLICT ... WHERE status = 'active' needs.
CREATE UNIQUE INDEX idx_inventory_alerts_active ON inventory_alerts (creator_id, product_id, alert_type)
    WHERE status = 'active';

-- Sync operation status for real-time sync monitoring
CREATE TABLE sync_operations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id UUID NOT NULL,  -- CHANGED: REFERENCES auth.users(id) dropped
    operation_type TEXT NOT NULL,
    source_system TEXT NOT NULL,
    target_system TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'retrying')),
    entity_count INTEGER DEFAULT 0,
    processed_count INTEGER DEFAULT 0,
    error_count INTEGER DEFAULT 0,
    last_error TEXT,
    started_at TIMESTAMPTZ DEFAULT NOW(),
    completed_at TIMESTAMPTZ,
    estimated_completion_at TIMESTAMPTZ,
    metadata JSONB DEFAULT '{}'
);
CREATE INDEX idx_sync_operations_creator_status ON sync_operations (creator_id, status, started_at DESC);  -- CHANGED: was inline

-- ---------------------------------------------------------------------------------------------
-- Database triggers for real-time updates (as specified, unchanged)
-- ---------------------------------------------------------------------------------------------

-- Trigger function to update dashboard metrics
CREATE OR REPLACE FUNCTION update_dashboard_metrics()
RETURNS TRIGGER AS $$
DECLARE
    creator_uuid UUID;
    metric_updates JSONB;
BEGIN
    -- Extract creator_id from the triggering table
    IF TG_TABLE_NAME = 'orders' THEN
        creator_uuid := COALESCE(NEW.creator_id, OLD.creator_id);

        -- Update order metrics
        INSERT INTO dashboard_metrics (creator_id, metric_type, metric_key, metric_value)
        VALUES
            (creator_uuid, 'orders', 'total_count', (
                SELECT COUNT(*) FROM orders WHERE creator_id = creator_uuid
            )),
            (creator_uuid, 'orders', 'today_count', (
                SELECT COUNT(*) FROM orders
                WHERE creator_id = creator_uuid
                AND DATE(created_at) = CURRENT_DATE
            )),
            (creator_uuid, 'orders', 'total_revenue', (
                SELECT COALESCE(SUM(total_amount), 0) FROM orders
                WHERE creator_id = creator_uuid
                AND status = 'completed'
            ))
        ON CONFLICT (creator_id, metric_type, metric_key)
        DO UPDATE SET
            metric_value = EXCLUDED.metric_value,
            updated_at = NOW();

    ELSIF TG_TABLE_NAME = 'inventory' THEN
        creator_uuid := COALESCE(NEW.creator_id, OLD.creator_id);

        -- Update inventory metrics
        INSERT INTO dashboard_metrics (creator_id, metric_type, metric_key, metric_value)
        VALUES
            (creator_uuid, 'inventory', 'total_products', (
                SELECT COUNT(*) FROM inventory WHERE creator_id = creator_uuid
            )),
            (creator_uuid, 'inventory', 'low_stock_count', (
                SELECT COUNT(*) FROM inventory
                WHERE creator_id = creator_uuid
                AND available_quantity <= reorder_point
            )),
            (creator_uuid, 'inventory', 'total_value', (
                SELECT COALESCE(SUM(available_quantity * unit_cost), 0)
                FROM inventory
                WHERE creator_id = creator_uuid
            ))
        ON CONFLICT (creator_id, metric_type, metric_key)
        DO UPDATE SET
            metric_value = EXCLUDED.metric_value,
            updated_at = NOW();
    END IF;

    RETURN COALESCE(NEW, OLD);
END;
$$ LANGUAGE plpgsql;

-- Apply triggers to relevant tables
CREATE TRIGGER orders_dashboard_metrics_trigger
    AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION update_dashboard_metrics();

CREATE TRIGGER inventory_dashboard_metrics_trigger
    AFTER INSERT OR UPDATE OR DELETE ON inventory
    FOR EACH ROW EXECUTE FUNCTION update_dashboard_metrics();

-- Trigger function for inventory alerts
CREATE OR REPLACE FUNCTION check_inventory_alerts()
RETURNS TRIGGER AS $$
DECLARE
    velocity NUMERIC;
    stockout_hours INTEGER;
    alert_severity TEXT;
BEGIN
    -- Only process updates that change stock levels
    IF OLD IS NULL OR NEW.available_quantity != OLD.available_quantity THEN

        -- Calculate recent velocity (sales per hour over last 24 hours)
        SELECT COALESCE(
            (COUNT(*) / 24.0), 0
        ) INTO velocity
        FROM order_items oi
        JOIN orders o ON oi.order_id = o.id
        WHERE oi.product_id = NEW.id
        AND o.created_at >= NOW() - INTERVAL '24 hours'
        AND o.status IN ('completed', 'shipped', 'delivered');

        -- Update velocity in inventory table
        UPDATE inventory
        SET
            velocity_per_hour = velocity,
            updated_at = NOW()
        WHERE id = NEW.id;

        -- Calculate estimated stockout time
        IF velocity > 0 THEN
            stockout_hours := CEILING(NEW.available_quantity / velocity);
        ELSE
            stockout_hours := NULL;
        END IF;

        -- Determine alert severity
        IF NEW.available_quantity = 0 THEN
            alert_severity := 'emergency';
        ELSIF NEW.available_quantity <= (NEW.reorder_point * 0.5) THEN
            alert_severity := 'critical';
        ELSIF NEW.available_quantity <= NEW.reorder_point THEN
            alert_severity := 'warning';
        ELSE
            alert_severity := NULL;
        END IF;

        -- Create or update alert if needed
        IF alert_severity IS NOT NULL THEN
            INSERT INTO inventory_alerts (
                creator_id,
                product_id,
                alert_type,
                severity,
                current_stock,
                threshold,
                velocity_per_hour,
                estimated_stockout_hours,
                message
            ) VALUES (
                NEW.creator_id,
                NEW.id,
                CASE WHEN NEW.available_quantity = 0 THEN 'stockout' ELSE 'low_stock' END,
                alert_severity,
                NEW.available_quantity,
                NEW.reorder_point,
                velocity,
                stockout_hours,
                FORMAT(
                    'Product "%s" has %s units remaining. Estimated stockout in %s hours.',
                    NEW.name,
                    NEW.available_quantity,
                    COALESCE(stockout_hours::TEXT, 'unknown')
                )
            )
            ON CONFLICT (creator_id, product_id, alert_type)
            WHERE status = 'active'
            DO UPDATE SET
                severity = EXCLUDED.severity,
                current_stock = EXCLUDED.current_stock,
                velocity_per_hour = EXCLUDED.velocity_per_hour,
                estimated_stockout_hours = EXCLUDED.estimated_stockout_hours,
                message = EXCLUDED.message,
                created_at = NOW();
        ELSE
            -- Resolve existing alerts if stock is above threshold
            UPDATE inventory_alerts
            SET
                status = 'resolved',
                resolved_at = NOW()
            WHERE creator_id = NEW.creator_id
            AND product_id = NEW.id
            AND status = 'active';
        END IF;
    END IF;

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER inventory_alerts_trigger
    AFTER INSERT OR UPDATE ON inventory
    FOR EACH ROW EXECUTE FUNCTION check_inventory_alerts();

-- ---------------------------------------------------------------------------------------------
-- Database function for atomic inventory reservation (as specified, unchanged)
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION reserve_inventory(
    p_creator_id UUID,
    p_product_id UUID,
    p_quantity INTEGER,
    p_order_id TEXT
) RETURNS VOID AS $$
DECLARE
    current_stock INTEGER;
BEGIN
    -- Lock the inventory row for update
    SELECT available_quantity INTO current_stock
    FROM inventory
    WHERE creator_id = p_creator_id AND id = p_product_id
    FOR UPDATE;

    -- Check if sufficient stock is available
    IF current_stock IS NULL THEN
        RAISE EXCEPTION 'Product not found: %', p_product_id;
    END IF;

    IF current_stock < p_quantity THEN
        RAISE EXCEPTION 'Insufficient stock. Available: %, Requested: %', current_stock, p_quantity;
    END IF;

    -- Update inventory levels
    UPDATE inventory
    SET
        available_quantity = available_quantity - p_quantity,
        reserved_quantity = reserved_quantity + p_quantity,
        updated_at = NOW()
    WHERE creator_id = p_creator_id AND id = p_product_id;

    -- Create reservation record
    INSERT INTO inventory_reservations (
        creator_id,
        product_id,
        order_id,
        quantity,
        reserved_at,
        expires_at
    ) VALUES (
        p_creator_id,
        p_product_id,
        p_order_id,
        p_quantity,
        NOW(),
        NOW() + INTERVAL '24 hours'
    );
END;
$$ LANGUAGE plpgsql;
