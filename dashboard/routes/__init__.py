"""The API's routes, one module per resource; each has a ``routes`` table (aiohttp RouteTableDef)."""
