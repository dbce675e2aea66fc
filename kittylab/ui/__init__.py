"""Notebook-only code: ipywidgets forms, the dashboard and the tutorial's helpers."""
