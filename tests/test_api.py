"""The public Python API: in-memory features, no output directory, a model from a pytree, and the README's example."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile

import numpy as np
import pytest

import tinymodel
import tokenlabel_jax as tl
from test_labeling import LCFG, ROOT, write_feature
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import model as model_lib

SMALL = dict(steps=LCFG.steps, seeds=LCFG.seeds, batch_size=LCFG.batch_size, n_train=LCFG.n_train, n_val=LCFG.n_val,
             n_heldout=LCFG.n_heldout, top_k=LCFG.top_k, vocab_filter="all")


def _records(n=40, seed=0):
  """The toy feature of test_labeling, as (tokens, numpy activations) pairs."""
  rows = [json.loads(l) for l in open(write_feature(os.path.join(tempfile.mkdtemp(), "t.jsonl"), n, seed))]
  return [(r["tokens"], np.asarray(r["activations"], np.float32)) for r in rows]


@pytest.fixture(scope="module")
def tiny_params():
  m = tinymodel.tiny_model()
  return m.params, m.cfg, m.tokenizer


def test_label_in_memory_without_output_dir(tiny_params, tmp_path, monkeypatch):
  params, cfg, tok = tiny_params
  m = tl.model_from_params(params, cfg, tok)
  records = _records()
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the run's scratch directory would be left
  results = tl.label(m, {"toy": records}, discriminator="namer", **SMALL)
  assert os.listdir(tmp_path) == []  # nothing kept on disk
  (r,) = results
  assert isinstance(r, tl.LabelResult) and r is results["toy"]
  assert r.label in (None, r.result["best_candidate"]) and 0.0 <= r.auc <= 1.0
  assert r.result["best_candidate"] == tok.decode(r.result["token_ids"])
  losses = [row["val_loss"] for row in r.result["verification"]]
  assert [c for c, _ in r.candidates] == [row["label"] for row in r.result["verification"]] and losses == sorted(losses)
  assert "<table>" in results._repr_html_() and "toy" in results._repr_html_()
  # The same feature read from the file through the launcher's path gives the same label: in-memory records are
  # the same data.
  monkeypatch.undo()
  again = tl.label(m, write_feature(tmp_path / "toy.jsonl"), discriminator="namer", **SMALL)
  assert again[0].label == r.label and again[0].auc == pytest.approx(r.auc)


def test_label_with_output_dir_writes_run(tiny_params, tmp_path):
  params, cfg, tok = tiny_params
  m = tl.model_from_params(params, cfg, tok)
  recs = [{"tokens": t, "activations": a.tolist()} for t, a in _records()]
  results = tl.label(m, {"toy": recs}, discriminator="namer", output_dir=tmp_path / "run", **SMALL)
  for f in ("toy/result.json", "toy/examples.json", "toy/report.html", "index.html", "explanations.jsonl",
            "summary.json"):  # summary.json as the launcher writes it (was: not written)
    assert (tmp_path / "run" / f).is_file(), f
  assert json.load(open(tmp_path / "run" / "toy" / "result.json"))["label"] == results[0].label
  assert json.load(open(tmp_path / "run" / "summary.json"))["toy"]["label"] == results[0].label
  # Called again (a notebook whose kernel died), a finished feature is kept, as the launcher keeps it; other
  # settings or resume=False label it again. Was: every feature labeled again.
  result_json = tmp_path / "run" / "toy" / "result.json"
  written = result_json.stat().st_mtime_ns
  again = tl.label(m, {"toy": recs, "toy2": recs}, discriminator="namer", output_dir=tmp_path / "run", **SMALL)
  assert result_json.stat().st_mtime_ns == written and [r.feature for r in again] == ["toy", "toy2"]
  assert again["toy"].result == json.loads(json.dumps(results["toy"].result)) and again["toy2"].label == results["toy"].label
  with pytest.raises(tl.UserError, match="output folder of a label or explain run"):  # was: explanations.jsonl:1
    tl.as_features(tmp_path / "run")                                                      # has no "tokens"
  (tmp_path / "run" / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
  with pytest.raises(tl.UserError, match="are one folder"):
    tl.label(m, tmp_path / "run", discriminator="namer", output_dir=tmp_path / "run", **SMALL)
  tl.label(m, {"toy": recs}, discriminator="namer", output_dir=tmp_path / "run", resume=False, **SMALL)
  assert result_json.stat().st_mtime_ns != written
  written = result_json.stat().st_mtime_ns
  tl.label(m, {"toy": recs}, discriminator="namer", output_dir=tmp_path / "run", **{**SMALL, "steps": 0})
  assert result_json.stat().st_mtime_ns != written


def test_label_goes_on_past_a_feature_that_fails(tiny_params, tmp_path):
  """As the launcher: a feature that cannot be labeled (no held-out positive) is named in one error raised after the
  others are labeled and written, with the summary and the report (was: the error of its batch, and nothing of the
  batch's good feature)."""
  params, cfg, tok = tiny_params
  m = tl.model_from_params(params, cfg, tok)
  feats = tmp_path / "feats"
  feats.mkdir()
  write_feature(feats / "good.jsonl")
  rows = [json.loads(l) for l in open(write_feature(tmp_path / "b.jsonl"))]
  (feats / "bad.jsonl").write_text("".join(json.dumps({**r, "split": "train"}) + "\n" for r in rows))
  out = tmp_path / "run"
  with pytest.raises(tl.UserError, match=r"1 of 2 features failed: bad") as e:
    tl.label(m, feats, discriminator="namer", output_dir=out, features_per_batch=2, **SMALL)
  assert "finished features are kept" in e.value.fix
  assert list(json.load(open(out / "summary.json"))) == ["good"]
  assert (out / "good" / "result.json").is_file() and (out / "index.html").is_file()
  assert not (out / "bad").exists()


def test_a_scorer_scores_the_label_and_the_baselines_again(tiny_params):
  """scorer= (the launcher's --score_discriminator): LabelResult.scorer holds the label's and the baselines' held-out
  AUCs under it, which are not the namer's figures; an unknown scorer is refused before any work."""
  params, cfg, tok = tiny_params
  m = tl.model_from_params(params, cfg, tok)
  lik = dataclasses.replace(disc_lib.get("likelihood"), neutral_label="x")  # one token for the byte tokenizer
  # A reference of several tokens keeps the prompts' caches, so the top token may be any word.
  (r,) = tl.label(m, {"toy": _records()}, discriminator="namer", scorer=lik, references=["cat"], **SMALL)
  assert r.result["scorer"]["discriminator"] == "likelihood"
  assert set(r.scorer) == {"label", "cat", *r.baselines} and "top_token" in r.baselines
  assert r.scorer["label"] == r.result["scorer"]["label"]["auc"]
  assert r.scorer["top_token"] == r.result["scorer"]["baselines"]["top_token"]["auc"]
  assert [r.scorer["label"], r.scorer["top_token"]] != pytest.approx([r.auc, r.baselines["top_token"][1]])
  (plain,) = tl.label(m, {"toy": _records()}, discriminator="namer", references="cat", **SMALL)
  assert plain.scorer == {} and plain.label == r.label
  assert plain.references == pytest.approx({"cat": r.references["cat"]})  # one string is one label, not its letters
  with pytest.raises(tl.UserError, match="unknown discriminator 'likelyhood'"):
    tl.label(m, {"toy": _records()}, scorer="likelyhood")


def test_api_errors_are_user_errors(tiny_params, tmp_path):
  params, cfg, tok = tiny_params
  m = tl.model_from_params(params, cfg, tok)
  with pytest.raises(tl.UserError, match="unknown setting"):
    tl.label(m, {"toy": _records()}, stepz=3)
  with pytest.raises(tl.UserError, match="2 tokens but 1 activations"):
    tl.label(m, {"toy": [(["a", "b"], [1.0])]})
  with pytest.raises(tl.UserError, match="cannot name a folder"):
    tl.label(m, {"../toy": _records()}, output_dir=tmp_path / "run")  # would write beside the run, not in it
  with pytest.raises(tl.UserError, match="no features given"):  # was: an empty result, where [] is refused
    tl.label(m, {})
  with pytest.raises(tl.UserError, match="a pattern is not expanded: pass its directory"):
    tl.as_features(str(tmp_path / "*.jsonl"))
  dead = [(["a", "b"], [0.0, 0.0])] * 3
  assert [f.name for f in tl.as_features({"toy": _records(), "dead": dead})] == ["toy"]  # skipped, with a warning
  with pytest.raises(tl.UserError, match="'dead' is negative-only"):  # nothing left to label
    tl.as_features({"dead": dead})
  toy = tl.as_features({"toy": _records()})[0]
  with pytest.raises(tl.UserError, match="two features are named 'toy'"):  # would share one result folder
    tl.label(m, [toy, toy], output_dir=tmp_path / "run")
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(tl.UserError, match="cannot write to output_dir"):  # was: FileExistsError
    tl.label(m, {"toy": _records()}, output_dir=blocker)
  with pytest.raises(tl.UserError, match="features_per_batch=0 is not allowed"):  # was: taken as 1
    tl.explain(m, {"toy": _records()}, features_per_batch=0)
  with pytest.raises(tl.UserError, match="missing.gguf"):  # a pathlib.Path is a path (was: AttributeError .lower)
    tl.load_model(tmp_path / "missing.gguf")
  with pytest.raises(tl.UserError, match="model=5 is a int"):
    tl.load_model(5)
  with pytest.raises(tl.UserError, match="ModelConfig"):
    tl.model_from_params(model_lib.init_params(tl.ModelConfig.tiny(dim=32), __import__("jax").random.PRNGKey(0)),
                         cfg, tok)


def test_records_of_token_ids_read_through_a_subject_tokenizer(tmp_path):
  """In-memory records may hold ids (a numpy array from a pipeline): as_features(..., subject_tokenizer=DIR) turns
  them into the subject tokenizer's strings; without it the message says to pass it."""
  import helpers  # pylint: disable=import-outside-toplevel
  tok = helpers.word_tokenizer()
  tok.save_pretrained(str(tmp_path / "tok"))
  ids = np.asarray([tok.convert_tokens_to_ids(w) for w in ("the", "dog", "sat")])
  records = [(ids, [0.0, 1.0, 0.0]), (ids[::-1], [0.0, 1.0, 0.0])]
  (f,) = tl.as_features({"dogs": records}, subject_tokenizer=tmp_path / "tok")
  assert [list(r.tokens) for r in f.records] == [["the", "dog", "sat"], ["sat", "dog", "the"]]
  with pytest.raises(tl.UserError, match="holds token ids"):
    tl.as_features(records)


def test_records_may_hold_jax_and_torch_arrays():
  """A JAX pipeline holds jax arrays, an SAELens one torch tensors (bfloat16, with grad): each reads as its list.
  Was: 'field "activations" must be a list of numbers (got a ArrayImpl)'; torch bfloat16 a TypeError traceback."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  lists = [(r[0], r[1].tolist()) for r in _records(12)]
  want = [(list(r.tokens), r.activations.tolist()) for r in tl.as_features({"f": lists})[0].records]
  kinds = [lambda a: jnp.asarray(a, jnp.bfloat16), lambda a: jnp.asarray(a)]
  torch = pytest.importorskip("torch")
  kinds += [lambda a: torch.tensor(a).bfloat16(), lambda a: torch.tensor(a, requires_grad=True)]
  for kind in kinds:
    (f,) = tl.as_features({"f": [(np.asarray(t), kind(a)) for t, a in lists]})
    assert [(list(r.tokens), r.activations.tolist()) for r in f.records] == want
  strings = sorted({t for t, _ in lists for t in t})
  ids = torch.tensor([[strings.index(t) for t in toks] for toks, _ in lists])
  acts = torch.tensor([a for _, a in lists]).bfloat16()
  (f,) = tl.from_arrays(ids, acts, ["f"], subject_tokenizer=strings, min_active=1, n_random=2)
  (g,) = tl.from_arrays(ids.numpy(), acts.float().numpy(), ["f"], subject_tokenizer=strings, min_active=1, n_random=2)
  assert [(list(r.tokens), r.activations.tolist()) for r in f.records] == [
      (list(r.tokens), r.activations.tolist()) for r in g.records]


def readme_example() -> str:
  text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
  section = text[text.index("## Python API"):]
  return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.model
def test_readme_example_runs(tmp_path, monkeypatch):
  """The README's example, as written: an in-memory feature labeled on the embedded model, no output directory."""
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  scope: dict = {}
  exec(compile(readme_example(), "README.md", "exec"), scope)  # pylint: disable=exec-used
  r = scope["results"]["animal"]
  assert os.listdir(tmp_path) == []
  print(r)
  assert r.label.strip() in ("animal", "animals", "creature", "beast") and r.auc > 0.8
  assert r.baselines["top_token"][0] in ("dog", "cat", "horse", "cow", "sheep", "goat", "duck", "mouse", "lion",
                                         "tiger", "bear", "wolf")  # the commonest word at the peaks: a member
  assert r.baselines["random_word"][1] < r.auc


def test_from_arrays_makes_features_from_a_pipelines_arrays(tiny_params):
  """N x S tokens (ids or strings) and N x S x F activations -> one Feature per firing latent, with the dashboard's
  contexts split by context; a latent that never fires is skipped; the features label as any others."""
  rng = np.random.default_rng(0)
  vocab = ["the", "a", "dog", "cat", "ran", "sat", "on", "mat", "big", "red"]
  ids_NxS = rng.integers(0, len(vocab), (80, 6))
  acts = np.zeros((80, 6, 3), np.float32)
  acts[..., 0] = np.isin(ids_NxS, [2, 3]) * rng.uniform(0.5, 3.0, (80, 6))  # fires on dog and cat
  acts[..., 1] = (ids_NxS == 5) * 1.0  # on sat
  feats = tl.from_arrays(ids_NxS, acts, names=["pets", "sat", "dead"], subject_tokenizer=vocab, n_active=10)
  assert [f.name for f in feats] == ["pets", "sat"]  # "dead" never fires: skipped
  pets = feats[0]
  texts = {tuple(r.tokens) for r in pets.records}
  assert texts <= {tuple(vocab[i] for i in row) for row in ids_NxS}  # whole contexts, ids decoded
  assert {r.split for r in pets.records} == {"train", "heldout"}
  for r in pets.records:  # each record's activations are the feature's, and fire only on its words
    assert all((a > 0) == (t in ("dog", "cat")) for t, a in zip(r.tokens, r.activations))
  held = {tuple(r.tokens) for r in pets.records if r.split == "heldout"}
  assert not held & {tuple(r.tokens) for r in pets.records if r.split == "train"}  # split by context
  assert 10 <= len(held) <= round(0.25 * 80)  # drawn from the held-out quarter of the contexts
  strings = tl.from_arrays(np.asarray(vocab)[ids_NxS], acts, names=["pets", "sat", "dead"], n_active=10)
  for a, b in zip(strings, feats, strict=True):  # strings give what ids give
    assert [(r.tokens, r.activations.tolist(), r.split) for r in a.records] == \
        [(r.tokens, r.activations.tolist(), r.split) for r in b.records]
  (one,) = tl.from_arrays(ids_NxS, acts[..., 0], subject_tokenizer=vocab, n_active=10)  # N x S: one feature
  assert one.name == "feature_0" and [r.tokens for r in one.records] == [r.tokens for r in pets.records]
  assert tl.from_arrays(ids_NxS, acts[..., :0], names=[], subject_tokenizer=vocab) == []  # no features: none
  with pytest.raises(tl.UserError, match="token ids"):
    tl.from_arrays(ids_NxS, acts)
  with pytest.raises(tl.UserError, match="token id 9 is outside the subject tokenizer's 9 tokens"):
    tl.from_arrays(ids_NxS, acts, subject_tokenizer=vocab[:9])
  with pytest.raises(tl.UserError, match="heldout_fraction=1"):
    tl.from_arrays(ids_NxS, acts, subject_tokenizer=vocab, heldout_fraction=1)
  with pytest.raises(tl.UserError, match="do not fit"):
    tl.from_arrays(ids_NxS[:, :5], acts, subject_tokenizer=vocab)
  params, cfg, tok = tiny_params
  (r,) = tl.label(tl.model_from_params(params, cfg, tok), feats[:1], discriminator="namer", **SMALL)
  assert r.feature == "pets" and 0.0 <= r.auc <= 1.0
