"""The web console's static files (served by gateway/api/console.py)."""
