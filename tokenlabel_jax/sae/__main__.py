"""Real features of a model: `python -m tokenlabel_jax.sae --output_dir=runs/sae [--tokens=200000 ...]`.

Builds a corpus, caches activations, trains a TopK SAE and exports activation records of its latents and of MLP
neurons; every stage is cached and a killed run resumes. Then: python -m tokenlabel_jax.label
--features=runs/sae/latents --output_dir=runs/sae/labels.
"""

from __future__ import annotations

import dataclasses
import json
import shlex

from absl import app, flags, logging

from tokenlabel_jax import runfiles
from tokenlabel_jax.errors import UserError, check_no_arguments, check_settings, exit_on_user_error, parse_flags
from tokenlabel_jax.loading import MODEL_KINDS, embedded, load_model
from tokenlabel_jax.sae import pipeline

_P, _S, _E = pipeline.PipelineConfig(), pipeline.sae_lib.SAEConfig(), pipeline.export_lib.ExportConfig()
flags.DEFINE_string("output_dir", None, "Where every stage writes (and finds its cache).", required=True)
flags.DEFINE_string("model", embedded.SMALL, f"Subject model: {MODEL_KINDS}; default {embedded.SMALL}, whose residual "
                    "stream the layer defaults and docs/real_features.md are for.")
flags.DEFINE_string("corpus", _P.corpus, "'debian' (the packages of scripts/install_corpora.sh) or a folder of .txt.")
flags.DEFINE_integer("tokens", _P.tokens, "Corpus size in tokens.")
flags.DEFINE_integer("context_len", _P.context_len, "Tokens per context.")
flags.DEFINE_integer("layer", _P.layer, "The SAE reads the residual stream entering this layer.")
flags.DEFINE_integer("mlp_layer", _P.mlp_layer, "The layer whose MLP neurons (silu(gate)*up) are exported.")
flags.DEFINE_integer("n_neurons", _P.n_neurons, "MLP neurons exported (a seeded uniform sample).")
flags.DEFINE_integer("batch_size", _P.batch_size, "Contexts per forward pass.")
flags.DEFINE_float("heldout_fraction", _P.heldout_fraction, "Share of contexts held out (SAE metrics, label AUC).")
flags.DEFINE_integer("n_latents", _S.n_latents, "SAE latents.")
flags.DEFINE_integer("k", _S.k, "Active latents per token (TopK).")
flags.DEFINE_float("learning_rate", _S.learning_rate, "SAE Adam learning rate.")
flags.DEFINE_integer("sae_batch_size", _S.batch_size, "Tokens per SAE step.")
flags.DEFINE_float("epochs", _P.epochs, "SAE passes over the training tokens.")
flags.DEFINE_integer("aux_dead_tokens", _S.aux_dead_tokens, "A latent silent this many tokens is dead for AuxK.")
flags.DEFINE_integer("dead_tokens", _P.dead_tokens, "Reported dead fraction: silent over this many last tokens.")
flags.DEFINE_integer("loss_contexts", _P.loss_contexts, "Held-out contexts for loss recovered.")
flags.DEFINE_integer("max_latents", _P.max_latents, "Export at most this many alive latents (0: all).")
flags.DEFINE_integer("n_active", _E.n_active, "Activating contexts per feature and split.")
flags.DEFINE_integer("n_random", _E.n_random, "Random non-activating contexts per feature and split.")
flags.DEFINE_integer("n_near", _E.n_near, "Near-miss contexts per feature and split.")
flags.DEFINE_integer("seed", _P.seed, "Seed of the corpus order, SAE init and export sampling.")
FLAGS = flags.FLAGS


@exit_on_user_error
def main(argv):
  check_no_arguments(argv, features_flag=False)
  logging.set_verbosity(logging.WARNING)
  f = FLAGS
  sae = dataclasses.replace(_S, n_latents=f.n_latents, k=f.k, learning_rate=f.learning_rate,
                            batch_size=f.sae_batch_size, aux_dead_tokens=f.aux_dead_tokens, seed=f.seed)
  exp = dataclasses.replace(_E, n_active=f.n_active, n_random=f.n_random, n_near=f.n_near, seed=f.seed)
  pc = pipeline.PipelineConfig(corpus=f.corpus, tokens=f.tokens, context_len=f.context_len, layer=f.layer,
                               mlp_layer=f.mlp_layer, n_neurons=f.n_neurons, batch_size=f.batch_size,
                               heldout_fraction=f.heldout_fraction, sae=sae, epochs=f.epochs,
                               dead_tokens=f.dead_tokens, loss_contexts=f.loss_contexts, export=exp,
                               max_latents=f.max_latents, seed=f.seed)
  if not 0 < pc.heldout_fraction < 1:
    raise UserError(f"--heldout_fraction={pc.heldout_fraction} is not in (0, 1)", "use e.g. 0.1")
  # k=0 would compute activations for half an hour, then train an SAE that reconstructs nothing
  check_settings(f, [("k", f.k >= 1, "at least 1"), ("n_latents", f.n_latents >= 1, "at least 1"),
                     ("sae_batch_size", f.sae_batch_size >= 1, "at least 1"),
                     ("batch_size", f.batch_size >= 1, "at least 1"), ("n_active", f.n_active >= 1, "at least 1"),
                     ("epochs", f.epochs > 0, "above 0"), ("learning_rate", f.learning_rate > 0, "above 0")])
  if pc.sae.k > pc.sae.n_latents:
    raise UserError(f"--k={pc.sae.k} exceeds --n_latents={pc.sae.n_latents}", "use k < n_latents")
  if pc.corpus != "debian" and not pipeline.os.path.isdir(pc.corpus):
    raise UserError(f"--corpus={pc.corpus}: neither 'debian' nor a directory",
                    "pass --corpus=debian or a folder of .txt")
  runfiles.check_writable(f.output_dir, f"--output_dir={f.output_dir}")  # before half an hour of activations
  m = load_model(f.model)
  result = pipeline.run(m, pc, f.output_dir)
  print(json.dumps(result["sae"], indent=1))
  if not result["export"]["latents"]:  # an empty latents/ folder is no command to hand on
    raise UserError(f"no latent fires in {_E.min_active} or more contexts of both splits of the corpus's "
                    f"{result['export']['contexts']} contexts, so none was exported",
                    "give a larger corpus (--tokens, or more text in --corpus)")
  # The subject model labels its own latents: for the default that is the 135M model, the README's whole-SAE command.
  print(f"labelable: python -m tokenlabel_jax.label --features={shlex.quote(f.output_dir + '/latents')} "
        f"--output_dir={shlex.quote(f.output_dir + '/labels')} --model={shlex.quote(f.model)} --select_margin=0 "
        "--features_per_batch=16")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
