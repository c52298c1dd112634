"""Metric collection and sampling."""
