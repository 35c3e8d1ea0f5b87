"""Flax linen building blocks and architectures."""
