"""Background jobs a person asks for and waits on (ledgers, case files): queued through the outbox."""
