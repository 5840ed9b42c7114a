"""A lead for the next session, measured on the naming benchmark's tuning half only: the *set namer*.

  python experiments/naming/probes/naming_setnamer.py  # after naming_typicality.py --limit 60 (reads its saved probe)

Eight prompts "w1, w2, w3 and w4 are kinds of" over random sets of a feature's positive training words (three
few-shot lines before): a member word cannot be the common kind of four different members. Each candidate of the
typicality probe gets set_pos (mean log-probability after the positive sets) and set_neg (after sets of negative
words); the rule table is printed and written to experiments/results/naming_setnamer.md.
"""
import collections, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
from absl import logging; logging.set_verbosity(logging.WARNING)
import numpy as np, jax, jax.numpy as jnp
from tokenlabel_jax import data as data_lib, model as model_lib, naming
from tokenlabel_jax.loading import load_model
m = load_model("smollm2-135m-instruct")
SHOTS = ("jazz, opera, blues and reggae are kinds of music.\ngranite, basalt, slate and marble are kinds of rock.\n"
         "Monday, Friday, Tuesday and Sunday are kinds of day.\n")
probe = json.load(open('experiments/results/naming_typicality_probe.json'))
fwd = jax.jit(lambda p, t: jax.nn.log_softmax(model_lib.forward_tokens(p, m.cfg, t)[0][:, -1], -1))
def set_logq(words_sets):
  ids = [m.tokenizer.encode(SHOTS + ", ".join(ws[:-1]) + " and " + ws[-1] + " are kinds of") for ws in words_sets]
  L = max(len(i) for i in ids)
  # left-pad by repeating BOS-free prompt start is not possible; run one by one (few prompts)
  return np.stack([np.asarray(fwd(m.params, jnp.asarray([i])))[0] for i in ids])
out = []
for c in probe:
  f = data_lib.load_features(f"experiments/data/benchmark/{c['name']}.jsonl")[0]
  pos = collections.Counter(); neg = collections.Counter()
  for r in f.records:
    if r.split != 'train': continue
    for t, a in zip(r.tokens, r.activations):
      w = t.strip()
      if w.isalpha(): (pos if a > 0 else neg)[w.lower()] += 1
  pw = sorted(pos); nw = sorted(w for w in neg if w not in pos)
  rng = np.random.default_rng(0)
  psets = [list(rng.choice(pw, 4, replace=False)) for _ in range(8)]
  nsets = [list(rng.choice(nw, 4, replace=False)) for _ in range(8)]
  lp, ln = set_logq(psets), set_logq(nsets)
  for cand in c['cands']:
    t = cand['ids'][0]
    cand['set_pos'] = float(lp[:, t].mean()); cand['set_neg'] = float(ln[:, t].mean())
  # best vocab tokens by set_pos for inspection
  top = np.argsort(-lp.mean(0))[:5]
  c['set_top'] = [m.tokenizer.token_str(int(t)) for t in top]
  out.append(c)
  print(c['name'], c['set_top'], flush=True)
def hits(rule):
  return sum(rule(c["cands"])["names"] for c in out)


from experiments import common  # pylint: disable=g-import-not-at-top
rows = [{"rule": "lowest validation loss", "names": hits(lambda cs: min(cs, key=lambda r: r["val_loss"]))}]
for k in (2, 4, 6, 8, 16):
  for key, f in (("set_pos", lambda r: r["set_pos"]), ("set_pos - set_neg", lambda r: r["set_pos"] - r["set_neg"]),
                 ("typicality", lambda r: r["typ"]), ("set_pos + typicality", lambda r: r["set_pos"] + r["typ"])):
    rows.append({"rule": f"best {k} by val loss, highest {key}",
                 "names": hits(lambda cs, k=k, f=f: max(sorted(cs, key=lambda r: r["val_loss"])[:k], key=f))})
for r in rows:
  r.update(of=len(out), rate=r["names"] / len(out))
common.write_table("naming_setnamer", rows, ["rule", "names", "of", "rate"],
                   f"Set namer on the naming benchmark's tuning half ({len(out)} categories)",
                   "Not the default: measured after the default was fixed, on few categories; a lead, not a result. "
                   "Top set-namer tokens per category: " + "; ".join(f"{c['name']}: {', '.join(c['set_top'][:3])}"
                                                                     for c in out),
                   command="python experiments/naming/probes/naming_setnamer.py")
