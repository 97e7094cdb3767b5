"""Workspaces (tenants), role grants and the one place where data is scoped to a workspace."""
