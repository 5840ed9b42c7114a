"""tokenlabel_jax: interpretable labels for language-model features by gradient descent in token space."""

__version__ = "0.1.0"
