"""The web layer: everything that speaks HTTP (pages, documentation, the gunicorn server)."""
