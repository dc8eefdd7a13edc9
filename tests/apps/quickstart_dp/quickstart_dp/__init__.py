"""A user's quickstart-style app (see pyproject.toml)."""
