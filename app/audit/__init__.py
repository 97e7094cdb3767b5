"""The audit log: who did what, when, in which workspace, from which address."""
