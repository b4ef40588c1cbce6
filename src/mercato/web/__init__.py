"""The HTTP application (create_app) and serving it (uvicorn, the supervisor, the drain)."""
