"""tokenlabel_jax: interpretable labels for language-model features by gradient descent in token space.

The public API (see README, "Python API"), imported on first use so that `import tokenlabel_jax` stays light:

    import tokenlabel_jax as tl
    m = tl.load_model()
    results = tl.label(m, {"animals": [(tokens, activations), ...]}, steps=100)
"""

import importlib as _importlib
import os as _os

# transformers (used here for tokenizers only) announces at import that PyTorch is absent; torch is a test-only
# dependency, so the note is noise to users. Only transformers' advisory warnings are turned off.
_os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

__version__ = "0.1.0"

_API = {
    "load_model": "tokenlabel_jax.api", "model_from_params": "tokenlabel_jax.api", "label": "tokenlabel_jax.api",
    "explain": "tokenlabel_jax.api",
    "as_features": "tokenlabel_jax.api", "from_arrays": "tokenlabel_jax.api", "LabelResult": "tokenlabel_jax.api", "Results": "tokenlabel_jax.api",
    "ModelConfig": "tokenlabel_jax.config", "LabelConfig": "tokenlabel_jax.optimization",
    "LoadedModel": "tokenlabel_jax.loading", "Feature": "tokenlabel_jax.data", "UserError": "tokenlabel_jax.errors",
    "write_report": "tokenlabel_jax.report",
}
__all__ = sorted(_API)


def __getattr__(name):
  if name in _API:
    return getattr(_importlib.import_module(_API[name]), name)
  raise AttributeError(f"module 'tokenlabel_jax' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
