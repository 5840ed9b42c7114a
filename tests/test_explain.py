"""The LLM-explainer baseline: what the explainer is shown, how its answers are read, and runs on a tiny random model
whose answers are set by the test (an empty, a too long, a non-text and a usable one), including a killed run that
resumes."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
import pytest

import tinymodel
from test_labeling import write_feature
from tokenlabel_jax import api, data as data_lib, explainer, explaining, generation
from tokenlabel_jax.errors import UserError
from tokenlabel_jax.records import Feature, Record


def test_parse_names_every_status():
  assert explainer.parse("Animal") == ("animal", "ok")
  assert explainer.parse("  Label: musical instrument.\nmore") == ("musical instrument", "ok")
  assert explainer.parse('"Chinese characters"') == ("chinese characters", "ok")  # sentence case: lowered
  assert explainer.parse("DNA sequence") == ("DNA sequence", "ok")  # other case kept
  assert explainer.parse("") == (None, "empty")
  assert explainer.parse("   \n ") == (None, "empty")
  assert explainer.parse("1. A father gave his teen-age daughter a pup") == (None, "too long")
  assert explainer.parse("<< 12 >> ...") == (None, "not text")


def _record(tokens, acts, split="train"):
  return Record(tuple(tokens), np.asarray(acts, np.float32), split, "test")


@pytest.mark.parametrize("settings, field", [(dict(samples=0), "samples="), (dict(temperature=-1.0), "temperature="),
                                             (dict(n_top=0, n_quantile=0), "no record")])
def test_explain_config_refuses_settings_that_show_or_generate_nothing(settings, field):
  with pytest.raises(UserError, match=field):
    explainer.ExplainConfig(**settings)
  explainer.ExplainConfig(n_top=0, temperature=0.0)  # the lower quantiles alone show records; 0 is greedy


def test_contexts_show_the_top_records_then_lower_quantiles_of_training_records_only():
  recs = [_record([" a", f" w{i}", " b"], [0, i + 1, 0]) for i in range(30)]
  recs.append(_record([" x", " held", " y"], [0, 99, 0], split="heldout"))  # never shown: held out
  recs.append(_record([" x", " quiet", " y"], [0, 0, 0]))  # never shown: not active
  ecfg = explainer.ExplainConfig(n_top=5, n_quantile=3, before=1, after=1)
  shown = explainer.contexts(Feature("f", tuple(recs)), 0.0, ecfg)
  assert shown[:5] == [f"a <<w{i}>> b" for i in (29, 28, 27, 26, 25)]  # strongest first, the token marked
  assert len(shown) == 8 and not any("held" in s or "quiet" in s for s in shown)
  lower = [int(s.split("<<w")[1].split(">>")[0]) for s in shown[5:]]
  assert max(lower) >= 16 and min(lower) <= 7  # spread over the ranks below the top, not the next three


@pytest.fixture(scope="module")
def tiny():
  return tinymodel.tiny_model()


@pytest.fixture
def answers(monkeypatch):
  """Sets what the model answers per prompt, in call order; records how many prompts were decoded."""
  state = {"texts": [], "calls": 0}
  tok = tinymodel.char_tokenizer()
  monkeypatch.setattr(explainer, "_ANSWERS", {})

  def fake_generate(params, cfg, prompts, max_new=16, stop_ids=(), temperature=0.0, seed=0, batch=8):
    out = []
    for _ in range(len(prompts) * len(np.atleast_1d(temperature))):
      text = state["texts"][state["calls"] % len(state["texts"])]
      state["calls"] += 1
      if text is KeyboardInterrupt:
        raise KeyboardInterrupt
      out.append(tok.encode(text))
    return out
  monkeypatch.setattr(generation, "generate", fake_generate)
  return state


def _features(tmp_path, n):
  return [data_lib.load_features(write_feature(tmp_path / f"f{i}.jsonl", seed=i))[0] for i in range(n)]


def test_every_answer_gets_a_status_and_a_result_never_a_crash(tiny, tmp_path, answers):
  answers["texts"] = ["", "a label far too long to be a label at all", "1234 !!", "cat"]
  feats = _features(tmp_path, 4)
  out = tmp_path / "run"
  results = api.explain(tiny, feats, output_dir=out, features_per_batch=4,
                        label_config={"n_val": 8, "n_heldout": 8})
  statuses = [r.result["label_status"] for r in results]
  assert statuses[:3] == ["empty", "too long", "not text"]
  assert statuses[3] in ("ok", "not above chance")  # a real label, scored on held-out examples
  assert results[3].result["best_candidate"] == "cat" and results[3].auc is not None
  for r, f in zip(results, feats):
    saved = json.loads((out / f.name / "result.json").read_text())
    assert saved["label_status"] == r.result["label_status"] and saved["source"] == "explainer"
  summary = json.loads((out / "summary.json").read_text())
  assert sorted(summary) == sorted(f.name for f in feats)
  assert (out / "index.html").is_file() and (out / "explanations.jsonl").is_file()


def test_a_feature_that_fails_is_named_after_the_others_are_written(tiny, tmp_path, answers):
  """As in `label`: a feature that cannot be scored (no held-out positive) ends the call with one error that names it
  and says why, after the others are explained and written (was: left out of the results without a word)."""
  answers["texts"] = ["cat"]
  (good,) = _features(tmp_path, 1)
  rows = [json.loads(l) for l in open(write_feature(tmp_path / "b.jsonl"))]
  (tmp_path / "bad.jsonl").write_text("".join(json.dumps({**r, "split": "train"}) + "\n" for r in rows))
  bad = data_lib.load_features(tmp_path / "bad.jsonl")[0]
  out = tmp_path / "run"
  with pytest.raises(UserError, match="1 of 2 features failed: bad") as e:
    api.explain(tiny, [good, bad], output_dir=out, features_per_batch=2, label_config={"n_val": 8, "n_heldout": 8})
  assert "heldout" in str(e.value) and "finished features are kept" in e.value.fix
  assert (out / good.name / "result.json").is_file() and (out / "index.html").is_file()
  assert list(json.loads((out / "summary.json").read_text())) == [good.name]
  lines = []  # a study that zips the results with another method's gets None for the failed one, not the next one
  got = explaining.explain_features(tiny, [bad, good], *_run_args(), str(tmp_path / "direct"), per_batch=2,
                                    log=lines.append)
  assert [r and r["feature"] for r in explaining.aligned(got, [bad, good])] == [None, good.name]
  assert any(l.startswith(f"error: feature {bad.name}") for l in lines)


def test_a_killed_run_resumes_with_the_features_it_lacks(tiny, tmp_path, answers):
  feats = _features(tmp_path, 3)
  out = tmp_path / "run"
  answers["texts"] = ["cat", "dog", KeyboardInterrupt]  # killed while decoding the third feature
  lines = []
  with pytest.raises(KeyboardInterrupt):
    explaining.explain_features(tiny, feats, *_run_args(), str(out), per_batch=1, log=lines.append)
  assert re.fullmatch(rf"features 2-2 of 3 \(\d+\.\d min so far, about \d+\.\d min left\): {feats[1].name}",
                      [l for l in lines if l.startswith("features 2-2")][0])
  assert (out / feats[1].name / "result.json").is_file() and not (out / feats[2].name).exists()
  answers["texts"], answers["calls"] = ["owl"], 0
  lines.clear()
  again = explaining.explain_features(tiny, feats, *_run_args(), str(out), per_batch=1, log=lines.append)
  assert answers["calls"] == 1  # only the missing feature was explained again
  assert lines[0].startswith("resuming: 2 of 3") and lines[1] == f"features 1-1 of 1: {feats[2].name}"
  assert [r["best_candidate"] for r in again] == ["cat", "dog", "owl"]
  changed = explaining.explain_features(tiny, feats[:1], *_run_args(samples=2), str(out), per_batch=1,
                                        log=lambda s: None)
  assert answers["calls"] == 3 and changed[0]["best_candidate"] == "owl"  # other settings: labeled anew


def _run_args(**ecfg):
  from tokenlabel_jax import discriminators as disc_lib
  from tokenlabel_jax.optimization import LabelConfig
  return (disc_lib.get("namer"), LabelConfig(steps=0, n_val=8, n_heldout=8),
          explainer.ExplainConfig(**ecfg))


def test_the_launcher_writes_the_label_layout(tmp_path):
  """`python -m tokenlabel_jax.explain` on the embedded model: one message per feature, the same files as `label`."""
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.explain", "--features=experiments/data/animal.jsonl",
                         f"--output_dir={tmp_path}", "--reference_labels=animal"], capture_output=True, text=True,
                        cwd=root, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  result = json.loads((tmp_path / "animal" / "result.json").read_text())
  assert result["source"] == "explainer" and result["label_status"] and "animal" in result["references"]
  assert (tmp_path / "index.html").is_file() and (tmp_path / "explanations.jsonl").is_file()


def test_explainer_proposals_join_the_candidate_pool(tiny, tmp_path, answers):
  """--propose_with=explainer: every answer becomes a candidate label (any length), scored exactly like the scan's
  (its validation scores are the namer's teacher-forced log-probabilities); the result records the proposals."""
  import jax.numpy as jnp
  from tokenlabel_jax import discriminators as disc_lib, labeling, selection
  from tokenlabel_jax.optimization import LabelConfig
  answers["texts"] = ["cat", "a cow", "big owl"]
  feature = _features(tmp_path, 1)[0]
  disc = disc_lib.get("namer")
  lcfg = LabelConfig(steps=0, n_train=16, n_val=8, n_heldout=8)
  scfg = selection.SelectConfig(propose_with="explainer", proposals=3, rule="typicality", margin=0.0)
  result = labeling.label_features(tiny, [feature], disc, lcfg, str(tmp_path / "run"), scfg=scfg, plots=False)[0]
  assert result["explainer"]["proposals"] == ["cat", "a cow", "big owl"]
  sp = labeling.build_splits(tiny, feature, disc, lcfg, keep_cache=True)
  ids = [disc_lib.encode_label(tiny.tokenizer, t) for t in result["explainer"]["proposals"]]
  cands = selection.gather(tiny, disc, sp["val"], labeling.allowed_tokens(tiny, lcfg), [], scfg, ids)
  proposed = {c.ids: c for c in cands if c.source == "explainer"}
  assert set(proposed) == {tuple(i) for i in ids} and max(len(i) for i in ids) > 2
  stored = {tuple(r["token_ids"]) for r in result["verification"] if r["source"] == "explainer"}
  assert stored == set(proposed)  # every proposal's scores are in result.json, not only when among the best 40
  for c in proposed.values():
    exact = np.asarray(disc_lib.hard_scores(tiny.params, tiny.cfg, disc, sp["val"].prep, jnp.asarray([c.ids])))[0]
    np.testing.assert_allclose(c.s_val, exact, atol=1e-4)


def test_answers_first_takes_the_earliest_answer_within_the_margin(tiny, tmp_path, answers):
  """The combination's answers_first: the explainer's first answer wins when it is within the margin; the set namer
  decides among the compared candidates otherwise (here: with the answers outside a margin of 0)."""
  from tokenlabel_jax import discriminators as disc_lib, labeling, selection
  from tokenlabel_jax.optimization import LabelConfig
  answers["texts"] = ["big owl", "a cow"]
  feature = _features(tmp_path, 1)[0]
  lcfg = LabelConfig(steps=0, n_train=16, n_val=8, n_heldout=8)
  scfg = selection.SelectConfig(propose_with="explainer", proposals=2, rule="set_namer", set_margin=100.0,
                                answers_first=True)
  run = lambda s, d: labeling.label_features(tiny, [feature], disc_lib.get("namer"), lcfg, str(tmp_path / d),
                                             scfg=s, plots=False)[0]
  first = run(scfg, "first")
  assert first["best_candidate"] == " big owl" and first["source"] == "explainer"
  rows = first["verification"]
  best = min(r["val_loss"] for r in rows)
  off = run(selection.SelectConfig(**{**scfg.__dict__, "set_margin": 0.0}), "off")
  assert abs(off["validation"]["val_loss"] - best) < 1e-6  # margin 0: only the lowest validation loss competes
  # An answer its validation examples do not show above the chance bar neither wins as an answer nor is compared.
  strict = dataclasses.replace(scfg, answers_above_chance=True, min_auc_lower=1.0)  # a bar no AUC passes
  assert run(strict, "strict")["best_candidate"] != " big owl"
  assert run(dataclasses.replace(strict, answers_above_chance=False), "lax")["best_candidate"] == " big owl"


def test_a_resumed_study_reuses_the_stored_answers_in_the_combination(tiny, tmp_path, answers, monkeypatch):
  """A study stopped after its explainer run: the new process keeps the stored explanations, and the combination
  proposes the answers stored with them instead of decoding the prompts again (which would cost as much again)."""
  from tokenlabel_jax import discriminators as disc_lib, labeling, selection
  feats = _features(tmp_path, 2)
  disc, lcfg, ecfg = _run_args(samples=2)
  answers["texts"] = ["cat", "big owl"]
  explaining.explain_features(tiny, feats, disc, lcfg, ecfg, str(tmp_path / "expl"), per_batch=2, log=lambda s: None)
  assert answers["calls"] == 4
  monkeypatch.setattr(explainer, "_ANSWERS", {})  # a new process: nothing decoded yet
  answers["texts"], answers["calls"] = ["dog"], 0
  kept = explaining.explain_features(tiny, feats, disc, lcfg, ecfg, str(tmp_path / "expl"), per_batch=2,
                                     log=lambda s: None)
  assert [r["explainer"]["proposals"] for r in kept] == [["cat", "big owl"]] * 2
  scfg = selection.SelectConfig(propose_with="explainer", proposals=2, rule="typicality", margin=0.0)
  comb = labeling.label_features(tiny, feats, disc, dataclasses.replace(lcfg, n_train=16),
                                 str(tmp_path / "comb"), scfg=scfg, plots=False)
  assert answers["calls"] == 0  # nothing decoded again
  assert [r["explainer"]["proposals"] for r in comb] == [["cat", "big owl"]] * 2


def test_the_rule_study_scores_stored_candidates_and_counts_the_recorded_label(tmp_path, monkeypatch):
  """experiments/explainer/rules.py: each rule re-chosen from a run's stored rows (the set namer's choice; the
  explainer's earliest near answer under expl@m; the ours pool without the proposals), with the count of features
  where it agrees with the label `label` recorded; the paper's four are read from the concepts set's file."""
  import sys  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from experiments.explainer import rules  # pylint: disable=import-outside-toplevel
  def row(label, source, loss, set_pos, ids):
    return {"label": label, "source": source, "val_loss": loss, "set_pos": set_pos, "token_ids": ids}
  runs = {"fruit": ([row(" fruit", "scan", 0.30, -1.0, [1]), row(" berry", "scan", 0.28, -2.0, [2]),
                     row("apple pie", "explainer", 0.40, -3.0, [3, 4])], ["apple pie", "berry"], " berry"),
          "tool": ([row(" tool", "scan", 0.20, -1.5, [5]), row(" axe", "scan", 0.50, -0.5, [6]),
                    row("hammer", "explainer", 0.21, -0.4, [7])], ["hammer"], "hammer")}
  for name, (verification, proposals, recorded) in runs.items():
    os.makedirs(tmp_path / name)
    with open(tmp_path / name / "result.json", "w") as f:
      json.dump({"verification": verification, "explainer": {"proposals": proposals}, "best_candidate": recorded,
                 "heldout": {"auc": 0.9 if name == "fruit" else 0.7}, "wall_time_s": 5.0}, f)
  cats = [{"name": "fruit", "names": ["fruit"]}, {"name": "tool", "names": ["tool"]}]
  table, per_feature = rules.score(str(tmp_path), cats)
  got = {(r["pool"], r["rule"]): (r["names"], r["equals the recorded label"]) for r in table}
  assert got["ours", "today"] == (1, 0)  # ' fruit' (set namer), ' axe' (no margin: the highest set-namer score)
  assert got["combined", "today"] == (1, 1)  # ' fruit', 'hammer'
  assert got["combined", "lowest loss"] == (1, 1)  # ' berry', ' tool'
  assert got["combined", "expl@0.05"] == (0, 2)  # ' berry' (the earliest answer within 0.05), 'hammer'
  assert got["combined", "set@0.05"] == (1, 1)  # ' fruit' (the set namer's best within 0.05), 'hammer'
  assert per_feature["tool"]["ours set@0.05"] == " tool"
  monkeypatch.setattr(rules.common, "RESULTS", str(tmp_path))
  with open(tmp_path / "explainer_rules_concepts_m.json", "w") as f:
    json.dump({"summary": {"chosen": {"combined": "expl@0.05"}, "labels": per_feature}}, f)
  assert rules.chosen_labels("paper", "m") == ("combined expl@0.05", {"fruit": " berry", "tool": "hammer"})
  assert rules.chosen_labels("test", "m") is None
  assert rules.recorded_aucs("paper", "m") == {"fruit": 0.9, "tool": 0.7}  # the rule chose what `label` recorded
  from experiments.explainer import compare, rescore  # pylint: disable=import-outside-toplevel
  stored = {"feature": "tool", **{f"{k} {c}": v for k in compare.METHODS for c, v in
                                  (("label", " tool"), ("names", True), ("AUC", 0.8))}}
  with open(tmp_path / "explainer_paper_m.json", "w") as f:
    json.dump({"rows": [stored, dict(stored, feature="fruit")]}, f)
  labels, methods = rescore.stored_labels("paper", "m")
  assert methods[3] == rescore.TUNED and [r[rescore.TUNED] for r in labels] == ["hammer", " berry"]
  assert [r[f"{rescore.TUNED} AUC"] for r in labels] == [0.7, 0.9]
  per_feature["fruit"]["combined expl@0.05"] = " fruit"  # not what `label` recorded: its figure is not taken
  with open(tmp_path / "explainer_rules_concepts_m.json", "w") as f:
    json.dump({"summary": {"chosen": {"combined": "expl@0.05"}, "labels": per_feature}}, f)
  assert rules.recorded_aucs("concepts", "m") == {"tool": 0.7}


def test_an_explanation_is_scored_beside_the_same_baselines_as_a_label(tiny, tmp_path, answers):
  """The explainer's result carries the baselines `label` scores (the top token and a random word), with the held-out
  figures `label` gets for them on the same feature: the two methods are read against the same words."""
  from tokenlabel_jax import discriminators as disc_lib, labeling
  answers["texts"] = ["cat"]
  feats = _features(tmp_path, 2)
  disc, lcfg, ecfg = _run_args()
  explained = explaining.explain_features(tiny, feats, disc, lcfg, ecfg, str(tmp_path / "e"), ["dog"], per_batch=2,
                                          log=lambda s: None)
  labeled = labeling.label_features(tiny, feats, disc, lcfg, str(tmp_path / "l"), ["dog"])
  for e, l in zip(explained, labeled):
    assert e["baselines"] and set(e["baselines"]) == set(l["baselines"])
    for k, b in l["baselines"].items():
      assert e["baselines"][k]["label"] == b["label"] and e["baselines"][k]["auc"] == pytest.approx(b["auc"])
    assert e["references"]["dog"]["auc"] == pytest.approx(l["references"]["dog"]["auc"])
    assert e["positive_words"] == l["positive_words"] and e["positive_words"]["occurrences"] > 0
  lik = dataclasses.replace(disc_lib.get("likelihood"), neutral_label="x")
  scored = explaining.explain_features(tiny, feats[:1], disc, lcfg, ecfg, str(tmp_path / "s"), ["dog"], lik,
                                       log=lambda s: None)[0]
  assert set(scored["scorer"]["baselines"]) == set(scored["baselines"])
