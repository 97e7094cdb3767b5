"""The case and assignment state machines (第八条: 初审交办—转办—办理—回复—催办—延办—退办—归档).

One transition table and the one function that applies it; nothing else sets a status.
Built by the case-workflow issue on top of the foundation's workspaces, roles and audit log.
"""
