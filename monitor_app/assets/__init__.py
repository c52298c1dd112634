"""Monitored assets: the config-declared ones, reachability, and how dbmon connects to them."""
