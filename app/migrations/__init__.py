"""Alembic migrations; rls.py holds the row-level security shared by them."""
