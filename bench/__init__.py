"""Benchmarks: each prints one JSON object comparing fairbeat with plain Celery."""
