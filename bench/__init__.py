"""Benchmarks: person lookup/search latency on a seeded database and the API throughput ratio against a bare
FastAPI + asyncpg baseline measured in the same run. `make bench` runs everything (bench/run_all.py)."""
