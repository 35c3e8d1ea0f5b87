"""Evaluation metrics: sample quality, likelihood estimates, sequence scores."""
