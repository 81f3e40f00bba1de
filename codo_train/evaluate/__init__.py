"""Evaluation: how background-invariant the learned object features are, and how they transfer."""
