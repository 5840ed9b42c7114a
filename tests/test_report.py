"""The HTML run report, rendered by headless Chromium: what a reader sees (labels, rows, shading, filter, sort)."""

from __future__ import annotations

import html.parser
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import tinymodel
from test_labeling import LCFG, ROOT, write_feature
from tokenlabel_jax import data as data_lib
from tokenlabel_jax import discriminators as disc_lib
from tokenlabel_jax import labeling
from tokenlabel_jax import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
browser = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (scripts/install_browser.sh)")


def render(path: str, fragment: str = "") -> str:
  """The DOM after Chromium has loaded the file and run its scripts; the network is off, as on a cluster node."""
  proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--proxy-server=127.0.0.1:9", "--dump-dom", "file://" + os.path.abspath(path) + fragment],
                        capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return proc.stdout


def screenshot(path: str, png: str, width: int = 1280, height: int = 800) -> None:
  subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={png}",
                  "file://" + os.path.abspath(path)], capture_output=True, timeout=120, check=True)


class Dom(html.parser.HTMLParser):
  """Rows of a table by id: each row's attributes, cell texts and whether it is shown (no display:none)."""

  def __init__(self, text: str):
    super().__init__()
    self.tables: dict[str, list[dict]] = {}
    self.images: list[dict] = []
    self.spans: list[dict] = []
    self._table = None
    self._row = None
    self._cell = None
    self.feed(text)

  def handle_starttag(self, tag, attrs):
    a = dict(attrs)
    if tag == "table":
      self._table = self.tables.setdefault(a.get("id", ""), [])
    elif tag == "tr" and self._table is not None:
      self._row = {"attrs": a, "cells": [], "shown": "display: none" not in (a.get("style") or "")}
      self._table.append(self._row)
    elif tag in ("td", "th") and self._row is not None:
      self._cell = []
      self._row["cells"].append(self._cell)
    elif tag == "img":
      self.images.append(a)
    elif tag == "span":
      self.spans.append(a)

  def handle_endtag(self, tag):
    if tag == "table":
      self._table = None
    elif tag == "tr":
      self._row = None
    elif tag in ("td", "th"):
      self._cell = None

  def handle_data(self, data):
    if self._cell is not None:
      self._cell.append(data)

  def body_rows(self, table: str) -> list[dict]:
    rows = self.tables[table]
    return [dict(r, text=["".join(c) for c in r["cells"]]) for r in rows[1:]]  # rows[0] is the header


def toy_features(tmp_path, n: int):
  files = [write_feature(tmp_path / f"toy{i}.jsonl", seed=i) for i in range(n)]
  return [data_lib.load_features(f)[0] for f in files]


def shown_label(result):
  """What a label cell says: the label, or (on a random tiny model a label may not beat chance) that there is none."""
  return result["label"] if result["label"] else f"no label (best candidate {result['best_candidate']})"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """A real labeling run of three features on the tiny model; one result made label-less as a newer run writes it."""
  base = tmp_path_factory.mktemp("report")
  run = base / "run"
  feats = toy_features(base, 3)
  results = labeling.label_features(tinymodel.tiny_model(), feats, disc_lib.get("namer"), LCFG, str(run),
                                    references=["a"])
  with open(run / "summary.json", "w") as f:
    json.dump({r["feature"]: {"label": r["label"]} for r in results}, f)
  # A feature whose label did not beat chance, with an independent scorer's figures, as labeling writes them.
  r2 = json.load(open(run / "toy2" / "result.json"))
  r2.update(label=None, best_candidate="<none-best>", label_status="not above chance",
            scorer={"discriminator": "likelihood", "label": {"auc": 0.4321}})
  json.dump(r2, open(run / "toy2" / "result.json", "w"))
  return run, results


def test_examples_dump_scores_the_chosen_label(tiny_run):
  run, results = tiny_run
  ex = json.load(open(run / "toy0" / "examples.json"))
  assert len(ex["heldout"]) == LCFG.n_heldout and ex["top_records"]
  peaks = [max(r["activations"]) for r in ex["top_records"]]
  assert peaks == sorted(peaks, reverse=True) and peaks[0] > 0
  # The dumped scores are the chosen label's: their AUC is the held-out AUC in result.json.
  from tokenlabel_jax import evaluation
  met = evaluation.metrics_from_scores([h["score"] for h in ex["heldout"]], [h["target"] for h in ex["heldout"]])
  assert abs(met["auc"] - results[0]["heldout"]["auc"]) < 1e-3
  for h in ex["heldout"]:
    assert 0 <= h["index"] < len(h["tokens"]) and 0.0 <= h["score"] <= 1.0


@browser
def test_index_renders_rows_labels_filter_and_sort(tiny_run):
  run, results = tiny_run
  index = report.write_report(str(run))
  assert index == str(run / "index.html")
  text = open(index, encoding="utf-8").read()
  assert "http://" not in text and "https://" not in text  # nothing fetched from outside
  dom = Dom(render(index))
  rows = dom.body_rows("features")
  assert len(rows) == 3 and all(r["shown"] for r in rows)
  by_feature = {r["attrs"]["data-feature"]: r for r in rows}
  for r in results[:2]:
    cells = by_feature[r["feature"]]["text"]
    assert cells[1] == shown_label(r)
    assert cells[2] == f"{r['heldout']['auc']:.3f}"
  # The label-less feature renders (no label, its best candidate, the scorer's AUC in its own column).
  none_row = by_feature["toy2"]["text"]
  assert "no label" in none_row[1] and "<none-best>" in none_row[1] and none_row[3] == "0.432"
  # The script runs: a filter in the URL hides the other rows and the count follows.
  dom = Dom(render(index, "#q=toy1"))
  shown = [r for r in dom.body_rows("features") if r["shown"]]
  assert [r["attrs"]["data-feature"] for r in shown] == ["toy1"]
  # Sorting by held-out AUC, descending, reorders the rows.
  dom = Dom(render(index, "#sort=auc&desc=1"))
  aucs = [float(r["text"][2]) for r in dom.body_rows("features") if r["text"][2] != "—"]
  assert aucs == sorted(aucs, reverse=True)
  order = [r["attrs"]["data-feature"] for r in dom.body_rows("features")]
  dom = Dom(render(index, "#sort=feature&desc=1"))
  assert [r["attrs"]["data-feature"] for r in dom.body_rows("features")] == ["toy2", "toy1", "toy0"]
  assert sorted(order) == ["toy0", "toy1", "toy2"]


@browser
def test_feature_page_shows_contexts_examples_candidates_and_plot(tiny_run):
  run, results = tiny_run
  report.write_report(str(run))
  r = results[0]
  dom = Dom(render(str(run / "toy0" / "report.html")))
  ex = json.load(open(run / "toy0" / "examples.json"))
  held = dom.body_rows("heldout")
  assert len(held) == LCFG.n_heldout
  # Hits and misses are marked from the score and the target, as a reader would judge them.
  for row in held:
    score, target = float(row["text"][0]), float(row["text"][2])
    assert row["attrs"]["class"] == ("hit" if (score > 0.5) == (target > 0.5) else "miss")
  assert len(dom.body_rows("top-contexts")) == len(ex["top_records"])
  assert [row["text"][0] for row in dom.body_rows("candidates")][0] == \
      min(r["verification"], key=lambda v: v["val_loss"])["label"]
  # Tokens are shaded by activation: the strongest token is fully opaque, inactive tokens transparent.
  alphas = [float(s["style"].split(",")[-1].rstrip(")")) for s in dom.spans
            if "rgba(255,140,0" in (s.get("style") or "")]
  assert max(alphas) == 1.0 and min(alphas) == 0.0
  (img,) = [i for i in dom.images if i.get("id") == "trajectory"]
  assert img["src"].startswith("data:image/png;base64,") and len(img["src"]) > 2000
  # The label-less feature's page renders too.
  dom = Dom(render(str(run / "toy2" / "report.html")))
  assert len(dom.body_rows("heldout")) == LCFG.n_heldout


def test_report_cli_and_errors(tiny_run, tmp_path):
  run, _ = tiny_run
  proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.report", str(run)], capture_output=True, text=True,
                        cwd=ROOT, timeout=120, check=False)
  assert proc.returncode == 0 and proc.stdout.strip() == str(run / "index.html"), proc.stderr
  proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.report", str(tmp_path)], capture_output=True,
                        text=True, cwd=ROOT, timeout=120, check=False)
  assert proc.returncode == 2 and "result.json" in proc.stderr and "Traceback" not in proc.stderr


@browser
def test_report_of_exported_sae_latents(tmp_path):
  """Latents read from an SAEDashboard (SAELens) export, labeled, and shown under their export ids."""
  rows = [json.loads(l) for l in open(write_feature(tmp_path / "toy.jsonl"))]
  batch = {"model_id": "gpt2-small", "layer": 8, "sae_set": "res-jb", "features": [
      {"feature_index": k, "activations": [{"tokens": r["tokens"], "values": r["activations"], "bin_min": -1,
                                            "bin_max": 99, "bin_contains": -1} for r in rows]} for k in (11, 42)]}
  (tmp_path / "batch-0.json").write_text(json.dumps(batch))
  feats = data_lib.load_features(tmp_path / "batch-0.json")
  run = tmp_path / "run"
  results = labeling.label_features(tinymodel.tiny_model(), feats, disc_lib.get("namer"), LCFG, str(run))
  dom = Dom(render(report.write_report(str(run))))
  rows = dom.body_rows("features")
  assert [r["attrs"]["data-feature"] for r in rows] == ["gpt2-small@8_latent11", "gpt2-small@8_latent42"]
  assert [r["text"][1] for r in rows] == [shown_label(r) for r in results]


@browser
@pytest.mark.model
@pytest.mark.slow
def test_report_of_the_26_concept_features(tmp_path):
  """The launcher over the 26 concept features (short run) writes a report that Chromium shows with 26 rows."""
  out = tmp_path / "concepts"
  proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.label", "--features=experiments/data/concepts",
                         f"--output_dir={out}", "--steps=20", "--seeds=2", "--n_train=48", "--n_val=32",
                         "--n_heldout=48", "--features_per_batch=13", "--log_every=20"],
                        capture_output=True, text=True, cwd=ROOT, timeout=1800, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "report: " in proc.stderr and (out / "explanations.jsonl").is_file()
  summary = json.load(open(out / "summary.json"))
  dom = Dom(render(str(out / "index.html")))
  rows = dom.body_rows("features")
  assert len(rows) == 26 == len(summary)
  for r in rows:
    assert r["text"][1] == summary[r["attrs"]["data-feature"]]["label"]
  dom = Dom(render(str(out / "index.html"), "#q=bird"))
  shown = [r for r in dom.body_rows("features") if r["shown"]]
  assert "bird" in [r["attrs"]["data-feature"] for r in shown] and len(shown) < 26
  assert all("bird" in "".join(r["text"]).lower() for r in shown)


@browser
def test_report_reads_results_defensively(tmp_path, capsys):
  """Results of older or newer runs: missing keys, a null label, an unreadable file; the report still renders."""
  for name, content in (("bare", "{}"), ("nolabel", json.dumps({"label": None, "heldout": {}, "verification": [{}]})),
                        ("broken", "{not json")):
    (tmp_path / name).mkdir()
    (tmp_path / name / "result.json").write_text(content)
  dom = Dom(render(report.write_report(str(tmp_path))))
  assert "broken/result.json unreadable" in capsys.readouterr().err
  rows = dom.body_rows("features")
  assert sorted(r["attrs"]["data-feature"] for r in rows) == ["bare", "nolabel"]
  assert all("no label" in r["text"][1] and r["text"][2] == "—" for r in rows)
  dom = Dom(render(str(tmp_path / "nolabel" / "report.html")))
  assert "heldout" not in dom.tables  # no examples.json: said in words, no empty table


def _headers(page: str, table: str = "features") -> list[str]:
  return ["".join(c).strip() for c in Dom(page).tables[table][0]["cells"]]


def test_index_shows_only_the_columns_a_run_has():
  """A default run (the namer's scan, no gradient) has no probability and no scorer: neither column is shown. A
  gradient run's probability and an independent scorer's AUC (named, beside the label's) are."""
  scan = [{"feature": "a", "_dir": "a", "label": " cat", "probability": None, "heldout": {"auc": 0.9}},
          {"feature": "b", "_dir": "b", "label": None, "heldout": {"auc": 0.5}}]
  assert _headers(report.index_html(scan, "t")) == ["feature", "label", "held-out AUC", "next candidates"]
  page = report.feature_html(scan[0], {}, None)
  assert "probability" not in page and "scorer" not in page
  both = [dict(scan[0], probability=0.25, scorer={"discriminator": "likelihood", "label": {"auc": 0.8}}), scan[1]]
  page = report.index_html(both, "t")
  assert _headers(page) == ["feature", "label", "held-out AUC", "scorer AUC (likelihood)", "probability", "next candidates"]
  rows = Dom(page).body_rows("features")
  assert [[t.strip() for t in r["text"][3:5]] for r in rows] == [["0.800", "0.25"], ["—", "—"]]
  page = report.feature_html(both[0], {}, None)
  assert "held-out AUC <b>0.900</b>; scorer AUC (likelihood) <b>0.800</b>" in page and "probability <b>0.25</b>" in page


def test_the_index_shows_the_runners_up_or_an_older_runs_best_candidates():
  """A result with `runners_up` shows them, in the rule's order; one without (an older run) its 5 best candidates by
  validation loss."""
  new = {"feature": "a", "_dir": "a", "label": " cat", "heldout": {"auc": 0.9},
         "runners_up": [[" feline", 0.8], [" pet", 0.7]],
         "verification": [{"label": " zz", "val_loss": 0.1}, {"label": " cat", "val_loss": 0.2}]}
  old = {"feature": "b", "_dir": "b", "label": " dog", "heldout": {"auc": 0.9},
         "verification": [{"label": f" w{i}", "val_loss": 1.0 - 0.1 * i} for i in range(7)]}
  rows = Dom(report.index_html([new, old], "t")).body_rows("features")
  assert rows[0]["text"][-1].split() == ["feline", "pet"]
  assert rows[1]["text"][-1].split() == ["w6", "w5", "w4", "w3", "w2"]


def test_baselines_show_beside_the_label_where_a_run_scored_them():
  """result.json's baselines (tokenlabel_jax.baselines): the index gains a top-token column, the feature page a table
  of both baselines; results of earlier versions, without them, show neither."""
  new = {"feature": "a", "_dir": "a", "label": " cat", "heldout": {"auc": 0.9},
         "baselines": {"top_token": {"label": "dog", "auc": 0.95, "accuracy": 0.9, "f1": 0.88},
                       "random_word": {"label": " kettle", "auc": 0.31, "accuracy": 0.5, "f1": 0.2}}}
  old = {"feature": "b", "_dir": "b", "label": " cow", "heldout": {"auc": 0.7}}
  page = report.index_html([new, old], "t")
  assert _headers(page) == ["feature", "label", "held-out AUC", "top token (held-out AUC)", "next candidates"]
  assert [r["text"][3].strip() for r in Dom(page).body_rows("features")] == ["dog 0.950", ""]
  rows = Dom(report.feature_html(new, {}, None)).body_rows("baselines")
  assert [[t.strip() for t in r["text"][:2]] for r in rows] == [["dog (top token)", "0.950"],
                                                               ["kettle (random word)", "0.310"]]
  assert _headers(report.index_html([old], "t")) == ["feature", "label", "held-out AUC", "next candidates"]
  assert "Baselines" not in report.feature_html(old, {}, None)
  assert all(len(r["cells"]) == 4 for r in Dom(report.feature_html(new, {}, None)).tables["baselines"])


def test_feature_page_says_which_words_fire_the_feature():
  """result.json's positive_words (baselines.word_spread): the commonest words at the positive tokens with their
  shares, and how many make up half; results without it (earlier versions) show nothing."""
  r = {"feature": "a", "label": " conjunction", "heldout": {"auc": 0.7},
       "positive_words": {"occurrences": 200, "words_for_half": 3,
                          "top": [["and", 0.25], ["or", 0.125], ["but", 0.1], ["<b>", 0.05]]}}
  page = report.feature_html(r, {}, None)
  line = page[page.index('<p id="positive-words">'):]
  line = line[:line.index("</p>")]
  assert ('<span class="label">and</span> 25%, <span class="label">or</span> 12%, <span class="label">but</span> 10%, '
          '<span class="label">&lt;b&gt;</span> 5%; 3 of them make up half of the 200 occurrences.') in line
  assert "positive-words" not in report.feature_html({"feature": "b", "label": " cow"}, {}, None)
  no_half = report.feature_html(dict(r, positive_words={"top": [["and", 0.25]]}), {}, None)
  assert '<span class="label">and</span> 25%.</p>' in no_half  # the words without a count to say
  for garbled in ("garbled", {"and": 0.25}, 5, [5, ["and"]]):
    assert "positive-words" not in report.feature_html(dict(r, positive_words={"top": garbled}), {}, None)
    assert "(and" not in report.index_html([dict(r, _dir="a", positive_words={"words_for_half": 3, "top": garbled})],
                                           "t")
  old = {"feature": "b", "_dir": "b", "label": " cow", "heldout": {"auc": 0.8}}  # an earlier version's result
  page = report.index_html([dict(r, _dir="a"), old], "t")
  assert _headers(page)[3] == "words for half its positives (commonest)"
  assert re.findall(r'<td data-col="words" class="num" data-v="([^"]*)"', page) == ["3", ""]  # sorts as a number
  assert [row["text"][3].strip() for row in Dom(page).body_rows("features")] == ["3 (and 25%)", ""]
  assert "words for half" not in report.index_html([old], "t")


def test_the_independent_scorers_figures_of_references_and_baselines_show_beside_theirs():
  """With --score_discriminator the feature page's reference and baseline tables gain the scorer's AUC (named), each
  row its own word's figure; a row the scorer did not score shows a dash."""
  r = {"feature": "a", "_dir": "a", "label": " cat", "heldout": {"auc": 0.9},
       "references": {"animal": {"auc": 0.93}, "pet": {"auc": 0.7}},
       "baselines": {"top_token": {"label": "dog", "auc": 0.95}, "random_word": {"label": " kettle", "auc": 0.31}},
       "scorer": {"discriminator": "likelihood", "label": {"auc": 0.8}, "animal": {"auc": 0.85},
                  "baselines": {"top_token": {"label": "dog", "auc": 0.61}, "random_word": {"label": " kettle",
                                                                                          "auc": 0.45}}}}
  dom = Dom(report.feature_html(r, {}, None))
  for table in ("references", "baselines"):
    assert [t.strip() for t in dom.tables[table][0]["cells"][-1]] == ["scorer AUC (likelihood)"]
  assert [[row["text"][i].strip() for i in (0, 1, 4)] for row in dom.body_rows("references")] == \
      [["animal", "0.930", "0.850"], ["pet", "0.700", "—"]]
  assert [[row["text"][i].strip() for i in (1, 4)] for row in dom.body_rows("baselines")] == \
      [["0.950", "0.610"], ["0.310", "0.450"]]
  # The index: the top token's scorer AUC in its own column, beside the label's; a run without it shows a dash.
  older = {"feature": "b", "_dir": "b", "label": " cow", "heldout": {"auc": 0.7},
           "baselines": {"top_token": {"label": "moo", "auc": 0.6}}}
  page = report.index_html([r, older], "t")
  assert _headers(page) == ["feature", "label", "held-out AUC", "scorer AUC (likelihood)",
                            "reference labels (held-out AUC)", "top token (held-out AUC)",
                            "top token, scorer AUC (likelihood)", "next candidates"]
  assert [[t.strip() for t in (row["text"][3], row["text"][6])] for row in Dom(page).body_rows("features")] == \
      [["0.800", "0.610"], ["—", "—"]]


def test_feature_page_of_a_scan_only_result_says_why_there_is_no_plot():
  """steps=0 (the namer's exact scan, the launcher's default for it): no trajectory section, a sentence instead."""
  page = report.feature_html({"feature": "f", "label": " cat", "steps": 0, "heldout": {"auc": 0.9}}, {}, None)
  assert "no gradient run" in page and "Trajectory" not in page
  page = report.feature_html({"feature": "f", "label": " cat", "steps": 300, "heldout": {"auc": 0.9}}, {}, None)
  assert "no gradient run" not in page and "no trajectory.png" in page
  page = report.feature_html({"feature": "f", "label": None, "best_candidate": " cat",
                              "hint": "it <follows> the context",
                              "heldout": {"auc": 0.5}}, {}, None)
  assert '<p class="hint">it &lt;follows&gt; the context</p>' in page
  assert 'class="hint"' not in report.feature_html({"feature": "f", "label": " cat", "heldout": {"auc": 0.9}}, {}, None)
