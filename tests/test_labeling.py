"""Labeling end to end on a tiny random model: outputs, determinism, resume after a kill, and the launcher's errors."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tinymodel
from tokenlabel_jax import baselines
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import labeling
from tokenlabel_jax import optimization as opt_lib
from tokenlabel_jax import selection
from tokenlabel_jax import splits as splits_lib
from tokenlabel_jax.errors import UserError

LCFG = opt_lib.LabelConfig(steps=12, seeds=2, batch_size=8, n_train=16, n_val=8, n_heldout=8, checkpoint_every=4,
                           log_every=4, top_k=3, vocab_filter="all")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_feature(path, n=40, seed=0, activation=lambda i, rng: 1.0, split=lambda i: None):
  """Records of 4 words; every other one holds an animal word with activation(record index, rng), the rest 0."""
  rng = np.random.default_rng(seed)
  pos, neg = ["cat", "dog", "cow", "owl"], ["cup", "pen", "map", "box"]
  with open(path, "w") as f:
    for i in range(n):
      words = [str(rng.choice(neg)) for _ in range(4)]
      acts = [0.0] * 4
      if i % 2 == 0:
        k = int(rng.integers(4))
        words[k], acts[k] = str(rng.choice(pos)), activation(i, rng)
      f.write(json.dumps({"tokens": [words[0]] + [" " + w for w in words[1:]], "activations": acts,
                          **({"split": split(i)} if split(i) else {})}) + "\n")
  return path


@pytest.fixture(scope="module")
def tiny():
  return tinymodel.tiny_model()


@pytest.fixture(scope="module")
def feature(tmp_path_factory):
  return data_lib.load_features(write_feature(tmp_path_factory.mktemp("f") / "toy.jsonl"))[0]


def test_label_feature_writes_result_plot_and_checkpoints(tiny, feature, tmp_path):
  r = labeling.label_feature(tiny, feature, disc_lib.get("judge"), LCFG, str(tmp_path), references=["a"])
  on_disk = json.load(open(tmp_path / "result.json"))
  for key in ("label", "best_candidate", "token_ids", "probability", "top_k", "steps", "seeds", "heldout",
              "wall_time_s", "config"):
    assert key in on_disk
  assert on_disk["best_candidate"] == tiny.tokenizer.decode(on_disk["token_ids"])
  assert on_disk["label"] == r["label"] and on_disk["label"] in (None, on_disk["best_candidate"])
  assert set(on_disk["heldout"]) == {"auc", "accuracy", "f1"}
  assert 0.0 <= on_disk["probability"] <= 1.0 and on_disk["steps"] == 12 and on_disk["seeds"] == 2
  assert "a" in on_disk["references"]
  # The chosen label is the most typical of the best few verification rows (by validation loss).
  rows = sorted(on_disk["verification"], key=lambda row: row["val_loss"])
  sel = on_disk["selection"]
  fin = [row for row in rows[:sel["typical_top"]] if row["val_loss"] <= rows[0]["val_loss"] + sel["margin"]]
  assert all("typicality" in row for row in fin) or len(fin) == 1
  assert max(fin, key=lambda row: row.get("typicality", 0.0))["token_ids"] == on_disk["token_ids"]
  assert os.path.getsize(tmp_path / "trajectory.png") > 1000
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["12", "8"]  # keeps the last two


def test_every_result_scores_the_top_token_beside_the_label(tiny, feature, tmp_path):
  """result.json's baselines: the commonest word at the strongest peaks, scored on the run's own examples (the same
  figures it gets as a reference label); a namer run without prefix caches takes only a peak word of one token rather
  than keeping every prompt's cache for one label."""
  top = baselines.top_token(feature, 0.0)
  assert top in ("cat", "dog", "cow", "owl")
  r = labeling.label_feature(tiny, feature, disc_lib.get("judge"), LCFG, str(tmp_path / "judge"), references=["a", top])
  assert r["baselines"]["top_token"] == {"label": top, **r["references"][top]}
  assert r["references"]["a"] != r["references"][top]  # so a baseline given another label's figures would show
  assert json.load(open(tmp_path / "judge" / "result.json"))["baselines"] == r["baselines"]
  spread = r["positive_words"]  # the words at the positive training tokens: the top token is at the peaks, not all
  assert spread == json.load(open(tmp_path / "judge" / "result.json"))["positive_words"]
  counts = baselines.positive_word_counts(feature, LCFG.threshold)
  assert spread["occurrences"] == sum(counts.values()) > 0 and spread["top"][0] == [
      counts.most_common(1)[0][0], counts.most_common(1)[0][1] / spread["occurrences"]]
  namer = disc_lib.get("namer")
  assert len(disc_lib.encode_label(tiny.tokenizer, top)) > 1 and not labeling.needs_cache(tiny, namer, LCFG,
                                                                                         selection.SelectConfig(), [])
  lean = labeling.label_feature(tiny, feature, namer, LCFG, str(tmp_path / "namer"))
  assert "top_token" not in lean["baselines"]  # every peak word is several tokens in the tiny vocabulary
  second = baselines.top_token(feature, 0.0, accept=lambda w: w != top)  # the commonest word the predicate allows
  assert second in ("cat", "dog", "cow", "owl") and second != top
  records = [dataclasses.replace(rec, activations=np.zeros_like(rec.activations)) for rec in feature.records]
  assert baselines.top_token(dataclasses.replace(feature, records=tuple(records)), 0.0) is None  # nothing peaks


def test_same_seed_same_label_and_resume_after_kill(tiny, feature, tmp_path):
  disc = disc_lib.get("likelihood")
  disc = dataclasses.replace(disc, neutral_label="x")
  full = labeling.label_feature(tiny, feature, disc, LCFG, str(tmp_path / "a"))

  calls = []

  class Killed(Exception):
    pass

  def dying_log(msg):
    calls.append(msg)
    if "step    8/" in msg:  # logged before the step-8 checkpoint: the last checkpoint is step 4
      raise Killed()

  splits = labeling.build_splits(tiny, feature, disc, LCFG)
  prep, targets = disc_lib.stack([splits["train"].prep]), splits["train"].target_B[None]
  mask = np.ones(tiny.cfg.vocab_size, bool)
  fp = {"any": "fingerprint"}
  ck = opt_lib.Checkpointer(str(tmp_path / "b" / "checkpoints"))
  with pytest.raises(Killed):
    opt_lib.train(tiny.params, tiny.cfg, disc, LCFG, prep, targets, mask, ck,
                  dying_log, fp)
  assert ck.manager.latest_step() == 4
  resumed, history = opt_lib.train(tiny.params, tiny.cfg, disc, LCFG, prep, targets, mask,
                                   opt_lib.Checkpointer(str(tmp_path / "b" / "checkpoints")), calls.append, fp)
  assert any("resumed from step 4" in c for c in calls)
  assert len(history) == LCFG.steps
  uninterrupted, _ = opt_lib.train(tiny.params, tiny.cfg, disc, LCFG, prep, targets, mask, None, calls.append, fp)
  np.testing.assert_array_equal(np.asarray(resumed.label["v_NxV"]), np.asarray(uninterrupted.label["v_NxV"]))
  # And the whole pipeline, run twice with the same seed, gives the same label.
  again = labeling.label_feature(tiny, feature, disc, LCFG, str(tmp_path / "c"))
  assert again["label"] == full["label"] and again["top_k"] == full["top_k"]


def test_namer_run_without_prefix_cache_gives_the_same_result(tiny, feature, tmp_path, monkeypatch):
  """A namer run that scores only one-token labels prepares no keys/values (`needs_cache`); its label, figures and
  references are those of a run that keeps them. A multi-token reference label brings the cache back."""
  disc = disc_lib.get("namer")
  refs = [tiny.tokenizer.decode(tiny.tokenizer.encode(" a")[:1])]
  scfg = labeling.selection.SelectConfig()
  assert not labeling.needs_cache(tiny, disc, LCFG, scfg, refs)
  assert labeling.needs_cache(tiny, disc, LCFG, scfg, refs + ["cat dog"])
  assert labeling.needs_cache(tiny, disc_lib.get("judge"), LCFG, scfg, refs)
  lean = labeling.label_features(tiny, [feature], disc, LCFG, str(tmp_path / "lean"), refs, resume=False)[0]
  monkeypatch.setattr(labeling, "needs_cache", lambda *a: True)
  full = labeling.label_features(tiny, [feature], disc, LCFG, str(tmp_path / "full"), refs, resume=False)[0]
  for key in ("label", "token_ids", "heldout", "references", "validation"):
    assert json.dumps(lean[key]) == json.dumps(full[key]), key


def test_checkpoint_of_other_settings_is_refused(tiny, feature, tmp_path):
  from tokenlabel_jax.errors import UserError
  disc = disc_lib.get("namer")
  labeling.label_feature(tiny, feature, disc, LCFG, str(tmp_path))
  with pytest.raises(UserError, match="other settings"):
    labeling.label_feature(tiny, feature, disc, dataclasses.replace(LCFG, lam_kl=0.5), str(tmp_path))


def _run_cli(*args, env=None):
  e = dict(os.environ, **(env or {}))
  return subprocess.run([sys.executable, "-m", "tokenlabel_jax.label", *args], capture_output=True, text=True,
                        cwd=ROOT, env=e, timeout=120, check=False)


@pytest.mark.parametrize("content, expect", [
    ("", "empty"),
    ('{"tokens": ["a"], "activations": [1.0]}\n{"tokens": ["a", "b"]', "bad.jsonl:2"),
    ('{"tokens": ["a", "b"], "activations": [1.0]}', "2 tokens but 1 activations"),
    ('{"tokens": ["a", "b"], "activations": [1.0, NaN]}', "NaN"),
    ('{"tokens": ["a", "b"], "activations": [0.0, -1.0]}', "negative-only"),
    ('{"tokens": ["a", "b"], "activations": [1.0, 2.0]}', "negative"),
])
def test_cli_bad_features_end_with_one_message(tmp_path, content, expect):
  f = tmp_path / "bad.jsonl"
  f.write_text(content)
  proc = _run_cli(f"--features={f}", f"--output_dir={tmp_path / 'out'}")
  assert proc.returncode == 2
  assert "Traceback" not in proc.stderr
  assert expect.lower() in proc.stderr.lower() and "fix:" in proc.stderr


def test_cli_unwritable_output_and_unknown_values(tmp_path):
  f = write_feature(tmp_path / "ok.jsonl")
  blocker = tmp_path / "file"
  blocker.write_text("x")
  proc = _run_cli(f"--features={f}", f"--output_dir={blocker}/sub")
  assert proc.returncode == 2 and "output_dir" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--features={f}", f"--output_dir={tmp_path}/o", "--discriminator=oracle")
  assert proc.returncode == 2 and "oracle" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--features={f}", f"--output_dir={tmp_path}/o", "--forcing=magic")
  assert proc.returncode == 2 and "forcing" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--features={f}")  # --output_dir is required
  assert proc.returncode == 2 and "output_dir" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--features={f}", f"--output_dir={tmp_path}/o", "--num_processes=2")  # not silently alone
  assert proc.returncode == 2 and "--coordinator_address" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--features={f}", f"--output_dir={tmp_path}/o", "--model=/nonexistent/model")
  assert proc.returncode == 2 and "/nonexistent/model" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--features={f}", f"--output_dir={tmp_path}/o", "--steps=5", "--log_every=0")  # was: modulo by 0
  assert proc.returncode == 2 and "log_every=0" in proc.stderr and "Traceback" not in proc.stderr
  proc = _run_cli(f"--features={f}", f"--output_dir={tmp_path}/o", "--features_per_batch=0")  # was: taken as 1
  assert proc.returncode == 2 and "features_per_batch=0 is not allowed" in proc.stderr and "Traceback" not in proc.stderr
  # --features=dir/*.jsonl, expanded by the shell: the second file is a stray word (was: "pass options as --flag=value")
  proc = _run_cli(f"--features={f}", str(f), f"--output_dir={tmp_path}/o")
  assert proc.returncode == 2 and "pass the directory" in proc.stderr and "Traceback" not in proc.stderr
  # One folder for both: the run's explanations.jsonl would be the next run's (a resume's) bad feature file.
  proc = _run_cli(f"--features={tmp_path}", f"--output_dir={tmp_path}/")
  assert proc.returncode == 2 and "are one folder" in proc.stderr and "Traceback" not in proc.stderr


def test_score_cli_refuses_an_unwritable_output_before_it_scores(tmp_path):
  """Was: a traceback after every label had been scored; now one message before the model loads."""
  f = write_feature(tmp_path / "ok.jsonl")
  blocker = tmp_path / "file"
  blocker.write_text("x")
  for args, expect in (([f"--output={blocker}/sub/out.json"], "cannot write to --output"),
                       (["--vocab", "--top_k=0"], "--top_k=0")):
    proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.score", f"--features={f}", "--labels=cat", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 2 and expect in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "loaded" not in proc.stderr  # refused before the model loads


@pytest.mark.parametrize("field, value", [("n_heldout", 0), ("n_val", 0), ("log_every", 0), ("checkpoint_every", 0),
                                          ("seeds", 0), ("steps", -3), ("positive_fraction", 1.0),
                                          ("threshold", float("nan")), ("threshold", 1e40), ("learning_rate", -0.1),
                                          ("negatives", "hard")])
def test_label_config_refuses_settings_that_break_a_run(field, value):
  with pytest.raises(UserError) as e:
    opt_lib.LabelConfig(**{field: value})
  assert e.value.what.startswith(f"{field}=") and f"--{field}" in e.value.fix
  opt_lib.LabelConfig(n_train=0)  # allowed: the scorer builds its splits without training examples


@pytest.mark.parametrize("field, value", [("steps", "10"), ("threshold", None), ("seeds", 2.5), ("ent_anneal", 1),
                                          ("seeds", True)])
def test_label_config_refuses_a_value_of_the_wrong_kind(field, value):
  """Was: a TypeError from the range checks, or a fractional count passed on; numpy numbers stay allowed."""
  with pytest.raises(UserError, match=f"{field}=.* is not"):
    opt_lib.LabelConfig(**{field: value})
  opt_lib.LabelConfig(steps=np.int64(3), threshold=1, lam_ent=np.float32(0.1))


def test_labeling_without_training_examples_is_refused_before_it_starts():
  for disc in ("judge", "namer"):  # the gradient run and the namer's choice rules both read training examples
    with pytest.raises(UserError, match="n_train=0"):
      labeling.default_steps(disc_lib.get(disc), opt_lib.LabelConfig(n_train=0), None)


@pytest.mark.model
def test_cli_keeps_finished_features_when_one_fails(tmp_path):
  """A batch with a feature whose held-out split is empty: the good one is labeled and kept, the bad one named."""
  feats = tmp_path / "feats"
  feats.mkdir()
  write_feature(feats / "good.jsonl")
  bad = [json.loads(l) for l in open(write_feature(tmp_path / "b.jsonl"))]
  with open(feats / "bad.jsonl", "w") as f:
    for r in bad:
      f.write(json.dumps({**r, "split": "train"}) + "\n")
  out = tmp_path / "out"
  proc = _run_cli(f"--features={feats}", f"--output_dir={out}", "--steps=3", "--seeds=1", "--n_train=8",
                  "--n_val=8", "--n_heldout=8", "--features_per_batch=2", "--reference_labels=,cat,")
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert "error: feature 'bad': split 'heldout' has no positive" in proc.stderr  # the feature named once
  summary = json.load(open(out / "summary.json"))
  assert list(summary) == ["good"] and os.path.exists(out / "good" / "result.json")
  assert list(json.load(open(out / "good" / "result.json"))["references"]) == ["cat"]  # no empty label from the commas


@pytest.mark.model
def test_cli_warms_prompts_once_for_a_run_of_several_batches(tmp_path):
  """Several batches: the namer's distinct prompts run up front (the batches then only gather rows); --noplots
  writes no trajectory.png; the summary, written once per batch, holds every feature; without --steps the namer's
  exact scan runs alone; --compile_cache keeps the compiled programs."""
  feats = tmp_path / "feats"
  feats.mkdir()
  write_feature(feats / "one.jsonl")
  write_feature(feats / "two.jsonl", seed=1)
  out = tmp_path / "out"
  proc = _run_cli(f"--features={feats}", f"--output_dir={out}", "--seeds=1", "--n_train=8",
                  "--n_val=8", "--n_heldout=8", "--features_per_batch=1", "--noplots",
                  f"--compile_cache={tmp_path / 'xla'}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "prompt passes:" in proc.stderr
  assert re.search(r"features 2-2 of 2 \(\d+\.\d min so far, about \d+\.\d min left\): two", proc.stderr)
  # No --steps with the namer: the exact scan alone, said on the terminal and in the result.
  assert "no gradient run" in proc.stderr
  r = json.load(open(out / "one" / "result.json"))
  assert r["steps"] == 0 and r["search"] == "exact scan" and r["probability"] is None
  assert len(os.listdir(tmp_path / "xla")) > 5  # --compile_cache kept the compiled programs
  assert sorted(json.load(open(out / "summary.json"))) == ["one", "two"]
  for name in ("one", "two"):
    assert os.path.exists(out / name / "result.json") and not os.path.exists(out / name / "trajectory.png")


def test_namer_scan_alone_gives_the_gradient_runs_label(tiny, feature, tmp_path):
  """The namer's one-token score is linear in p: the gradient run adds no label its exact scan misses, so steps=0
  (the launcher's default for it) gives the same label, with no soft label, checkpoint or plot."""
  namer = disc_lib.get("namer")
  assert labeling.scan_suffices(namer, LCFG) and not labeling.scan_suffices(disc_lib.get("judge"), LCFG)
  assert labeling.default_steps(namer, LCFG, None) == 0 and labeling.default_steps(namer, LCFG, 7) == 7
  assert labeling.default_steps(disc_lib.get("judge"), LCFG, None) == LCFG.steps
  # The char vocabulary is small: a scan of its best 4 (not 48) keeps the comparison sharp. Lowest validation loss
  # first (no rule hides what the gradient adds), then the default rule.
  small = selection.SelectConfig(scan_top=4, natural_top=0, coverage_pool=4)
  for scfg, tag in ((dataclasses.replace(small, margin=0.0), "lowest"), (small, "rule")):
    full, alone = (labeling.label_features(tiny, [feature], namer, lcfg, str(tmp_path / f"{tag}{lcfg.steps}"), (),
                                           True, None, scfg)[0] for lcfg in (LCFG, dataclasses.replace(LCFG, steps=0)))
    assert alone["token_ids"] == full["token_ids"] and alone["heldout"] == full["heldout"], tag
  assert any(row["source"] in ("p", "gradient") for row in full["verification"])
  assert all(row["source"] not in ("p", "gradient") for row in alone["verification"])
  assert alone["token_ids"] == full["token_ids"] and alone["heldout"] == full["heldout"]
  assert alone["search"] == "exact scan" and full["search"] == "gradient + exact scan"
  assert alone["probability"] is None and alone["top_k"] == [] and full["probability"] is not None
  assert sorted(os.listdir(tmp_path / "rule0" / feature.name)) == ["examples.json", "result.json"]
  with pytest.raises(UserError, match="without candidates"):
    labeling.label_feature(tiny, feature, disc_lib.get("judge"), dataclasses.replace(LCFG, steps=0),
                           str(tmp_path / "judge"))


def test_ensemble_namer_labels_by_the_scan_and_refuses_longer_labels(tiny, feature, tmp_path):
  """namer_both labels a feature end to end with the exact scan (its averaged log q is checked in test_objective);
  settings that need labels of several tokens are a UserError before any work."""
  both = disc_lib.get("namer_both")
  lcfg, scfg = dataclasses.replace(LCFG, steps=0), selection.SelectConfig(margin=0.0, scan_top=4, natural_top=0)
  r = labeling.label_features(tiny, [feature], both, lcfg, str(tmp_path / "both"), (), True, None, scfg)[0]
  assert r["discriminator"] == "namer_both" and r["search"] == "exact scan" and len(r["token_ids"]) == 1
  for bad in (dataclasses.replace(lcfg, label_slots=2), dataclasses.replace(lcfg, steps=4, label_slots=2)):
    with pytest.raises(UserError, match="one-token labels only"):
      labeling.label_features(tiny, [feature], both, bad, str(tmp_path / "bad"), (), True, None, scfg)
  with pytest.raises(UserError, match="one-token labels only"):
    labeling.label_features(tiny, [feature], both, lcfg, str(tmp_path / "ext"), (), True, None,
                            dataclasses.replace(scfg, extend_top=2))


def test_a_restarted_run_keeps_only_results_made_with_the_same_settings(tiny, feature, tmp_path):
  """What the launcher keeps when a killed run is started again: finished features of the same model,
  discriminator and settings; a result made with other settings, or unreadable, is labeled again."""
  namer, lcfg, scfg = disc_lib.get("namer"), dataclasses.replace(LCFG, steps=0), selection.SelectConfig()
  r = labeling.label_features(tiny, [feature], namer, lcfg, str(tmp_path), (), True, None, scfg)[0]
  other = dataclasses.replace(feature, name="other")
  labeling.label_features(tiny, [other], namer, dataclasses.replace(lcfg, n_val=16), str(tmp_path), (), True, None,
                          scfg)
  (tmp_path / "broken").mkdir()
  (tmp_path / "broken" / "result.json").write_text("{not json")
  names = [feature.name, "other", "broken", "missing"]
  assert list(labeling.finished_results(str(tmp_path), names, tiny, namer, lcfg, scfg)) == [feature.name]
  assert labeling.finished_results(str(tmp_path), names, tiny, namer, lcfg, scfg)[feature.name]["label"] == r["label"]
  assert not labeling.finished_results(str(tmp_path), names, tiny, namer, lcfg, dataclasses.replace(scfg, margin=0))
  assert not labeling.finished_results(str(tmp_path), names, tiny, disc_lib.get("judge"), lcfg, scfg)


def write_outlier_feature(path, n=40, seed=0):
  """The issue's heavy-tailed feature: positives of 0.5-4 and one outlier of 10 (in a held-out record)."""
  return write_feature(path, n, seed, lambda i, rng: 10.0 if i == 0 else float(rng.uniform(0.5, 4.0)),
                       lambda i: "heldout" if i == 0 else None)


def test_continuous_mode_counts_positives_as_the_sampler_does(tiny, tmp_path):
  """Positive means activation > threshold in every mode: continuous targets change the loss target, never which
  examples are drawn, the split checks or what AUC/accuracy count as positive (with activation / max and a 0.5 cut,
  this feature's training examples were 'all negative')."""
  feature = data_lib.load_features(write_outlier_feature(tmp_path / "outlier.jsonl"))[0]
  disc = disc_lib.get("namer")
  lcfg = dataclasses.replace(LCFG, target_mode="continuous")
  cont = labeling.build_splits(tiny, feature, disc, lcfg)
  binary = labeling.build_splits(tiny, feature, disc, LCFG)
  for name in ("train", "val", "heldout"):
    acts = np.array([feature.records[e.record].activations[e.index] for e in cont[name].examples])
    np.testing.assert_array_equal(cont[name].positive_B, acts > 0)
    np.testing.assert_array_equal(cont[name].positive_B, binary[name].positive_B)
    np.testing.assert_array_equal(binary[name].target_B, acts > 0)
    assert (cont[name].target_B[~cont[name].positive_B] == 0).all()
    assert 0 < cont[name].target_B[cont[name].positive_B].min()
  # The robust scale keeps the bulk of the positives' targets high (the max would put them at 0.05-0.4).
  assert np.median(cont["train"].target_B[cont["train"].positive_B]) > 0.5
  row = splits_lib.evaluate_labels(tiny, disc, [[5]], cont["val"], cont["heldout"])[0]
  assert row["n_positive"] == int(cont["heldout"].positive_B.sum()) and row["n"] == len(cont["heldout"].examples)
  r = labeling.label_feature(tiny, feature, disc, lcfg, str(tmp_path / "out"))
  assert np.isfinite(r["heldout"]["auc"])


def test_a_context_feature_gets_no_word_label_and_a_hint_to_read_the_context(tiny, feature, tmp_path, capsys):
  """experiments/data/context/food_sense: the same words are positives (in dishes) and near misses (as animals).
  The word-only namer scores a word alike in both senses, so no label is above chance, and result.json and the
  terminal line say why (`hint`); a feature of words gets no hint to read the context."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  food = data_lib.load_features(os.path.join(root, "experiments", "data", "context", "food_sense.jsonl"))[0]
  lcfg = dataclasses.replace(LCFG, steps=0, threshold=0.5, negatives="near_miss", n_train=16, n_val=32, n_heldout=32)
  namer = disc_lib.get("namer")
  (got,) = labeling.label_features(tiny, [food], namer, lcfg, str(tmp_path / "food"))
  assert got["label"] is None and got["hint"].startswith("100%") and "namer_context" in got["hint"]
  assert json.load(open(tmp_path / "food" / food.name / "result.json"))["hint"] == got["hint"]
  line = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(f"[{food.name}] label None")]
  assert len(line) == 1 and "not above chance: no label; " + got["hint"] in line[0]
  from tokenlabel_jax import runfiles  # pylint: disable=import-outside-toplevel
  assert runfiles.summary_entry(got)["hint"] == got["hint"]  # summary.json: which of many features read context
  (word,) = labeling.label_features(tiny, [feature], namer, dataclasses.replace(LCFG, steps=0), str(tmp_path / "w"))
  assert "namer_context" not in word.get("hint", "")  # (its few held-out words may get labeling.evidence_hint's)


def test_an_unreadable_summary_is_rebuilt_from_the_results_beside_it(tmp_path, capsys):
  """Was: a JSONDecodeError traceback on the next run; the result.json files hold everything summary.json keeps."""
  from tokenlabel_jax import runfiles  # pylint: disable=import-outside-toplevel
  for name, label in (("a", " dog"), ("b", None)):
    (tmp_path / name).mkdir()
    (tmp_path / name / "result.json").write_text(json.dumps({"feature": name, "label": label, "heldout": {"auc": 0.9}}))
  (tmp_path / "c").mkdir()
  (tmp_path / "c" / "result.json").write_text("{cut")  # a feature whose own result is unreadable runs again
  path = str(tmp_path / "summary.json")
  runfiles.write_summary(path, {"a": {"label": " dog"}})
  assert runfiles.read_summary(path) == {"a": {"label": " dog"}}
  (tmp_path / "summary.json").write_text("{cut")
  assert runfiles.read_summary(path) == {"a": {"label": " dog", "heldout": {"auc": 0.9}},
                                         "b": {"label": None, "heldout": {"auc": 0.9}}}
  assert "rebuilt from the 2 result.json files" in capsys.readouterr().err


def test_label_words_takes_labels_as_a_person_gives_them():
  """One string is one label (a references="animal" scored its letters); empty entries from doubled commas and
  repeats add no label; a non-string is refused by name."""
  assert labeling.label_words("animal") == ["animal"]
  assert labeling.label_words(["", "cat", "dog", "cat", ""]) == ["cat", "dog"]
  with pytest.raises(UserError, match="label 3 is not a string"):
    labeling.label_words(["cat", 3])
