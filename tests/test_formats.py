"""Readers of other tools' activation exports (a small file in each format), the unknown-format message, and the
explanations file written per run."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

import helpers
import tinymodel
from test_labeling import LCFG, ROOT, _run_cli, write_feature
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import formats
from tokenlabel_jax import labeling
from tokenlabel_jax.errors import UserError

SEQS = [([" the", " dog", " sat"], [0.0, 2.5, 0.0]), ([" a", " cat", " ran", "."], [0.0, 1.25, 0.0, 0.0]),
        ([" the", " mat"], [0.0, 0.0])]


def _as_dict(feature):
  return [(list(r.tokens), r.activations.tolist()) for r in feature.records]


def test_neuronpedia_feature_json(tmp_path):
  f = tmp_path / "204.json"
  f.write_text(json.dumps({
      "modelId": "gpt2-small", "layer": "6-res-jb", "index": "204", "maxActApprox": 2.5,
      "activations": [{"tokens": t, "values": v, "maxValue": max(v), "maxValueTokenIndex": int(np.argmax(v)),
                       "minValue": 0.0} for t, v in SEQS],
      "explanations": [{"description": "animals", "explanationModelName": "gpt-4o-mini"}]}))
  assert formats.detect(str(f)) == "neuronpedia"
  (feat,) = data_lib.load_features(f)
  assert feat.name == "gpt2-small@6-res-jb_latent204" and _as_dict(feat) == SEQS
  assert formats.parse_name(feat.name) == {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "204"}


def test_neuronpedia_export_rows(tmp_path):
  f = tmp_path / "batch-0.jsonl"
  rows = [{"modelId": "gemma-2-2b", "layer": "20-gemmascope-res-16k", "index": str(i), "tokens": t, "values": v,
           "maxValue": max(v)} for i in (3, 9) for t, v in SEQS]
  f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
  feats = data_lib.load_features(f)
  assert [x.name for x in feats] == ["gemma-2-2b@20-gemmascope-res-16k_latent3",
                                     "gemma-2-2b@20-gemmascope-res-16k_latent9"]
  assert all(_as_dict(x) == SEQS for x in feats)
  # A latent that never fires in the export is skipped with a warning; the others are read.
  dead = dict(rows[0], index="5", values=[0.0] * len(rows[0]["tokens"]))
  f.write_text("\n".join(json.dumps(r) for r in [*rows, dead]) + "\n")
  assert [x.name for x in data_lib.load_features(f)] == [x.name for x in feats]
  # An export cut short (a killed download): the message names the line, counting blank lines, and the fix.
  f.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2])[:-9] + "\n")
  with pytest.raises(UserError, match=r"(?s)batch-0.jsonl:4: invalid JSON .*fix: re-export the file"):
    data_lib.load_features(f)


def test_gzip_files_and_a_byte_order_mark_read_as_the_plain_files(tmp_path):
  """Neuronpedia's bulk exports come as .jsonl.gz and Windows tools write a byte-order mark: both read as the plain
  file does (was: a UnicodeDecodeError traceback, and "invalid JSON" at the mark). A file that is no text, or a .gz
  cut short, gets one message naming it."""
  rows = [{"modelId": "gemma-2-2b", "layer": "20-res", "index": str(i), "tokens": t, "values": v} for i in (3, 9)
          for t, v in SEQS]
  text = "\n".join(json.dumps(r) for r in rows) + "\n"
  (tmp_path / "plain").mkdir()
  (tmp_path / "plain" / "batch-0.jsonl").write_text(text)
  want = [(x.name, _as_dict(x)) for x in data_lib.load_features(tmp_path / "plain" / "batch-0.jsonl")]
  (tmp_path / "packed").mkdir()
  packed = tmp_path / "packed" / "batch-0.jsonl.gz"
  packed.write_bytes(gzip.compress(text.encode()))
  assert formats.detect(str(packed)) == "neuronpedia" and formats.detect(str(tmp_path / "packed")) == "mixed"
  for source in (packed, tmp_path / "packed"):
    assert [(x.name, _as_dict(x)) for x in data_lib.load_features(source)] == want
  feature = json.dumps({"modelId": "m", "layer": "6", "index": "4",
                        "activations": [{"tokens": t, "values": v} for t, v in SEQS]})
  (tmp_path / "4.json.gz").write_bytes(gzip.compress(feature.encode()))
  (feat,) = data_lib.load_features(tmp_path / "4.json.gz")
  assert feat.name == "m@6_latent4" and _as_dict(feat) == SEQS
  ours = write_feature(tmp_path / "toy.jsonl")
  (tmp_path / "toys").mkdir()
  (tmp_path / "toys" / "toy.jsonl.gz").write_bytes(gzip.compress(open(ours, "rb").read()))
  (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + open(ours, "rb").read())
  want = [(x.name, _as_dict(x)) for x in data_lib.load_features(ours)]
  assert [(x.name, _as_dict(x)) for x in data_lib.load_features(tmp_path / "toys")] == want  # named by the stem
  assert [_as_dict(x) for x in data_lib.load_features(tmp_path / "bom.jsonl")] == [d for _, d in want]
  (tmp_path / "noise.jsonl").write_bytes(bytes(range(128, 256)) * 20)
  with pytest.raises(UserError, match=r"(?s)noise.jsonl: cannot be read as UTF-8 text.*fix: pass the records"):
    data_lib.load_features(tmp_path / "noise.jsonl")
  (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(text.encode())[:-20])
  with pytest.raises(UserError, match=r"(?s)cut.jsonl.gz: cannot be read as gzip-compressed UTF-8 text.*cut short"):
    data_lib.load_features(tmp_path / "cut.jsonl.gz")
  (tmp_path / "cut.json.gz").write_bytes(gzip.compress(feature.encode())[:-20])
  with pytest.raises(UserError, match=r"cut.json.gz: not readable JSON \(EOFError"):
    data_lib.load_features(tmp_path / "cut.json.gz")
  proc = _run_cli(f"--features={tmp_path / 'noise.jsonl'}", f"--output_dir={tmp_path / 'out'}")
  assert proc.returncode == 2 and "Traceback" not in proc.stderr and "cannot be read as UTF-8 text" in proc.stderr


def test_sae_dashboard_batch(tmp_path):
  f = tmp_path / "batch-0.json"
  feats = [{"feature_index": k, "neg_str": ["x"], "neg_values": [-1.0], "frac_nonzero": 0.01,
            "activations": [{"bin_min": -1, "bin_max": 99, "bin_contains": -1, "tokens": t, "values": v}
                            for t, v in (SEQS if k == 5 else SEQS[::-1])]} for k in (5, 17)]
  f.write_text(json.dumps({"model_id": "gpt2-small", "layer": 8, "sae_set": "res-jb", "features": feats}))
  assert formats.detect(str(f)) == "sae_dashboard"
  a, b = data_lib.load_features(f)
  assert (a.name, b.name) == ("gpt2-small@8_latent5", "gpt2-small@8_latent17")
  assert _as_dict(a) == SEQS and _as_dict(b) == SEQS[::-1]


def test_openai_neuron_record(tmp_path):
  rec = lambda t, v: {"dataclass_name": "ActivationRecord", "tokens": t, "activations": v}
  f = tmp_path / "131.json"
  f.write_text(json.dumps({
      "dataclass_name": "NeuronRecord", "neuron_id": {"dataclass_name": "NeuronId", "layer_index": 5,
                                                      "neuron_index": 131},
      "random_sample": [rec(*SEQS[2])], "random_sample_by_quantile": [[rec(*SEQS[1])]],
      "quantile_boundaries": [0.0, 1.0], "mean": 0.1, "variance": 0.2, "skewness": 1.0, "kurtosis": 3.0,
      "most_positive_activation_records": [rec(*SEQS[0])]}))
  assert formats.detect(str(f)) == "openai"
  (feat,) = data_lib.load_features(f)
  assert feat.name == "5_latent131"
  assert _as_dict(feat) == [SEQS[0], SEQS[2], SEQS[1]]  # most positive, random, by quantile


def _write_delphi(root, with_tokens=True):
  """A delphi cache of 4 sequences x 6 positions, latents 0-19 in two split files of hookpoint layers.3."""
  from safetensors.numpy import save_file
  rng = np.random.default_rng(0)
  n_words = len(helpers.WORDS)
  tokens = rng.integers(3, 3 + n_words, (4, 6)).astype(np.int64)
  # latent 12 fires at (0, 1) = 2.0 and (2, 4) = 0.5; latent 3 at (1, 0) = 1.0; (sequence, position, latent)
  fires = {12: [(0, 1, 2.0), (2, 4, 0.5)], 3: [(1, 0, 1.0)]}
  module = root / "latents" / "layers.3"
  module.mkdir(parents=True)
  for first, last in ((0, 9), (10, 19)):
    loc = [(s, p, lat - first) for lat, hits in fires.items() if first <= lat <= last for s, p, _ in hits]
    act = [a for lat, hits in fires.items() if first <= lat <= last for _, _, a in hits]
    data = {"locations": np.asarray(loc, np.uint16).reshape(-1, 3), "activations": np.asarray(act, np.float16)}
    if with_tokens:
      data["tokens"] = tokens
    save_file(data, str(module / f"{first}_{last}.safetensors"))
  (module / "config.json").write_text(json.dumps({"model_name": "org/not-on-this-machine", "ctx_len": 6}))
  return root / "latents", tokens, fires


def test_delphi_latent_cache(tmp_path):
  cache, tokens, fires = _write_delphi(tmp_path)
  tok_dir = tmp_path / "tok"
  helpers.word_tokenizer().save_pretrained(str(tok_dir))
  assert formats.detect(str(cache)) == "delphi"
  feats = {f.name: f for f in data_lib.load_features(cache, subject_tokenizer=str(tok_dir))}
  assert sorted(feats) == ["layers.3_latent12", "layers.3_latent3"]  # the split file's offset is added back
  f12 = feats["layers.3_latent12"]
  # Active sequences first, strongest first, then the inactive ones, each with its dense activations.
  assert len(f12.records) == 4
  first, second = f12.records[0], f12.records[1]
  np.testing.assert_array_equal(first.activations, [0, 2.0, 0, 0, 0, 0])
  np.testing.assert_array_equal(second.activations, [0, 0, 0, 0, 0.5, 0])
  assert list(first.tokens) == [helpers.WORDS[t - 3] for t in tokens[0]]  # ids decoded by the subject tokenizer
  # Without a tokenizer (config.json names a hub model that is not here) the message says what to pass.
  with pytest.raises(UserError, match="subject_tokenizer"):
    data_lib.load_features(cache)
  bare, _, _ = _write_delphi(tmp_path / "bare", with_tokens=False)
  with pytest.raises(UserError, match="tokens"):
    data_lib.load_features(bare, subject_tokenizer=str(tok_dir))


def test_jsonl_of_token_ids_reads_through_the_subject_tokenizer(tmp_path):
  """Pipelines often save token ids: JSONL records whose "tokens" are ids read as the strings the subject tokenizer
  gives them (as for delphi caches), and without --subject_tokenizer the message says to pass it."""
  tok_dir = tmp_path / "tok"
  tok = helpers.word_tokenizer()
  tok.save_pretrained(str(tok_dir))
  ids = [[tok.convert_tokens_to_ids(w) for w in words] for words in (["dog", "cat", "sat"], ["mat", "dog"])]
  rows = [{"tokens": ids[0], "activations": [1.0, 0.0, 0.0]}, {"tokens": ids[1], "activations": [0.0, 2.0]}]
  (tmp_path / "dogs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  (feat,) = data_lib.load_features(tmp_path / "dogs.jsonl", subject_tokenizer=str(tok_dir))
  assert [list(r.tokens) for r in feat.records] == [[tok.decode([i]) for i in row] for row in ids]
  assert [list(r.tokens) for r in feat.records][1] == ["mat", "dog"]
  with pytest.raises(UserError, match=r'(?s)dogs.jsonl:1: field "tokens" holds token ids.*--subject_tokenizer'):
    data_lib.load_features(tmp_path / "dogs.jsonl")
  rows[1]["tokens"] = [ids[1][0], 10**6]
  (tmp_path / "dogs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  with pytest.raises(UserError, match=r"dogs.jsonl:2: token id 1000000 is outside the subject tokenizer's"):
    data_lib.load_features(tmp_path / "dogs.jsonl", subject_tokenizer=str(tok_dir))


@pytest.mark.model
def test_score_reads_token_ids_through_its_subject_tokenizer_flag(tmp_path):
  """`score --subject_tokenizer` (label's flag, now also score's and explain's) on a JSONL of ids."""
  tok_dir = tmp_path / "tok"
  tok = helpers.word_tokenizer()
  tok.save_pretrained(str(tok_dir))
  rows = []
  for k in range(24):  # "dog"/"cat" fire, the other words do not
    words = [helpers.WORDS[(k + j) % len(helpers.WORDS)] for j in range(5)]
    rows.append({"tokens": [tok.convert_tokens_to_ids(w) for w in words],
                 "activations": [1.0 if w in ("dog", "cat") else 0.0 for w in words]})
  (tmp_path / "pets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.score", f"--features={tmp_path / 'pets.jsonl'}",
                         f"--subject_tokenizer={tok_dir}", "--labels=animal", "--n_val=8", "--n_heldout=8",
                         f"--output={tmp_path / 'out.json'}"], capture_output=True, text=True, cwd=ROOT,
                        timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  (r,) = json.load(open(tmp_path / "out.json"))
  assert r["feature"] == "pets" and r["baselines"]["top_token"]["label"] in ("dog", "cat")


def test_unknown_format_lists_known_ones(tmp_path):
  f = tmp_path / "weird.json"
  f.write_text(json.dumps({"feature_id": 3, "examples": [{"text": "a dog"}]}))
  with pytest.raises(UserError) as e:
    data_lib.load_features(f)
  for name in formats.FORMATS:
    assert name in str(e.value)
  proc = _run_cli(f"--features={f}", f"--output_dir={tmp_path / 'out'}")
  assert proc.returncode == 2 and "Traceback" not in proc.stderr and "not a known activation format" in proc.stderr
  assert "delphi" in proc.stderr and "Neuronpedia" in proc.stderr


def test_explanations_file_per_run(tmp_path):
  rows = [json.loads(l) for l in open(write_feature(tmp_path / "toy.jsonl"))]
  f = tmp_path / "np.json"
  f.write_text(json.dumps({"modelId": "gpt2-small", "layer": "6-res-jb", "index": 204,
                           "activations": [{"tokens": r["tokens"], "values": r["activations"]} for r in rows]}))
  (feat,) = data_lib.load_features(f)
  run = tmp_path / "run"
  (r,) = labeling.label_features(tinymodel.tiny_model(), [feat], disc_lib.get("namer"), LCFG, str(run))
  path = formats.write_explanations(str(run))
  (entry,) = [json.loads(l) for l in open(path)]
  assert entry["modelId"] == "gpt2-small" and entry["layer"] == "6-res-jb" and entry["index"] == "204"
  # A label that did not beat chance is written as no explanation (null), never as its best candidate.
  description = r["label"].strip() if r["label"] else None
  assert entry["description"] == description and entry["score"] == r["heldout"]["auc"]
  assert json.load(open(run / "explanations" / f"{feat.name}.txt")) == description
