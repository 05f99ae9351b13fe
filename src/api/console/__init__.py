"""The researchers' console: server-rendered pages at /console, read-only."""
