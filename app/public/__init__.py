"""The public portal: published replies and declined messages, search, masking (第十二条, 第十八条)."""
