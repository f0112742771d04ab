"""HTTP API and web pages (aiohttp): status, call records, agent actions, metrics."""
