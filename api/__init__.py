"""Top layer: the FastAPI app (routers, auth, problem+json errors)."""
