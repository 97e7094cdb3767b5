"""Cases (one per citizen's message) and assignments (one per unit on a case)."""
