"""The HTTP API: routers per resource (routes/), dependency types (deps.py), schemas."""
