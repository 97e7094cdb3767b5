"""督查室 dashboard, quality list and the statistics of 第六条 (see docs/architecture.md)."""
