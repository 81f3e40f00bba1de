"""Contrastive losses, one per file."""
