import json, sys, time, os
sys.path.insert(0, '/work/main')
from absl import logging; logging.set_verbosity(logging.WARNING)
import numpy as np
from tokenlabel_jax import data as data_lib, discriminators as disc_lib, labeling, selection, naming, optimization as opt_lib
from tokenlabel_jax.loading import load_model
m = load_model(None); disc = disc_lib.get('namer'); lik = disc_lib.get('likelihood'); lcfg = opt_lib.LabelConfig()
mask = disc_lib.word_like_mask(m.tokenizer, m.cfg.vocab_size)
spec = json.load(open('experiments/naming/categories.json'))['categories']
cats = [c for c in spec if c['split'] == 'tune']
out = []
scfg = selection.SelectConfig(extend_top=int(sys.argv[2]) if len(sys.argv) > 2 else 4)
t0 = time.time()
for c in cats[:int(sys.argv[1])]:
  f = data_lib.load_features(f"experiments/data/benchmark/{c['name']}.jsonl")[0]
  sp = labeling.build_splits(m, f, disc, lcfg)
  cands = selection.gather(m, disc, sp['val'], mask, (), scfg)
  selection.score(m, disc, cands, sp['val'], sp['heldout'])
  cands.sort(key=lambda x: x.stats['val_loss'])
  top = cands[:16]
  typ = selection.typicality(m, f, sp['val'], top, lik)
  rows = [{'label': x.text, 'ids': x.ids, 'names': naming.names_category(x.text, c['names']), 'typ': float(t), **x.stats} for x, t in zip(top, typ)]
  out.append({'name': c['name'], 'names': c['names'], 'cands': rows})
  json.dump(out, open('/tmp/typ.json', 'w'))
  print(len(out), c['name'], f"{time.time()-t0:.0f}s", flush=True)
