"""Snapshots of the app-store top charts in every country, kept in SQLite."""

__version__ = "0.1.0"
