"""Protection of personal data: encryption at rest, key rotation, what staff see of a citizen."""
