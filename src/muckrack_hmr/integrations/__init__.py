"""Opt-in integrations with other tools (``pytest --hmr``); nothing here is imported by default."""
