"""Model registry: runs, versions, stages and their history; promotion and rollback (no Flask)."""
