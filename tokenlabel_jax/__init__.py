"""tokenlabel_jax: interpretable labels for language-model features by gradient descent in token space."""

import os as _os

# transformers (used here for tokenizers only) announces at import that PyTorch is absent; torch is a test-only
# dependency, so the note is noise to users. Only transformers' advisory warnings are turned off.
_os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

__version__ = "0.1.0"
