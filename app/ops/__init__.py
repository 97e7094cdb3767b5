"""Operations: logging and metrics set-up, backup and restore."""
