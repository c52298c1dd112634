"""The settings object and the declarative config file, as a running process uses them."""
