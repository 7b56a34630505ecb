"""`devin-exporter backfill`: past steps of every Devin series, as OpenMetrics with timestamps."""
