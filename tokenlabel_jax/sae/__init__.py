"""Real features of a model: a corpus, cached activations, a TopK sparse autoencoder, and exported activation records.

One module per stage: `corpus` (text -> fixed-length token contexts), `activations` (residual stream and MLP neurons,
cached float16 on disk), `autoencoder` (the TopK SAE of Gao et al. 2024 and its metrics), `export` (per-feature
activation records in the project's JSONL format) and `pipeline` (the stages chained and cached); `__main__` is the
launcher, `python -m tokenlabel_jax.sae --output_dir=runs/sae`.
"""
