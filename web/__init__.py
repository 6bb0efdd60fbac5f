"""Kollie's aiohttp application: pages, server-sent events, JSON API and registry webhooks."""
