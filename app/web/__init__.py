"""HTTP plumbing shared by every feature: rendering, flash messages, identity, errors."""
