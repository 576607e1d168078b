"""Benchmarks for runbook: `python -m bench` (or `make bench`) measures every figure of the performance
issue once, side by side with its baseline, prints one table and writes `bench/RESULTS.md`.

Benchmarks never assert timings; they report. One module per figure (`fig1_engine` ... `fig6_concurrency`).
"""
