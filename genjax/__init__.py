"""genjax: generative and discriminative models side by side, in functional JAX."""

__version__ = "0.1.0"
