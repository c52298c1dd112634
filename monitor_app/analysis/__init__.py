"""Trends, anomalies and forecasts over metric series: plain functions, no storage."""
