"""Inventory rules, one module per topic: ``catalogue`` (warehouses and products), ``stock``
(reserve, release, commit, restock, adjust, sync) and ``alerts`` (the alert engine)."""
