"""End to end on the embedded model, as a user runs it: the README's animal command ends on an in-concept label."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_CONCEPT = {"animal", "animals", "creature", "creatures", "beast", "beasts", "mammal", "mammals", "pet", "pets",
              "wildlife", "species"}


@pytest.mark.slow
@pytest.mark.model
def test_animal_feature_ends_on_an_in_concept_label(tmp_path):
  """From random v, 300 steps with the default namer and verification: a label a person would accept for the
  synthetic animal feature, with a held-out AUC well above chance (README: ' animal', 0.941)."""
  proc = subprocess.run([sys.executable, "-m", "tokenlabel_jax.label", "--features=experiments/data/animal.jsonl",
                         f"--output_dir={tmp_path}", "--reference_labels=animal"],
                        capture_output=True, text=True, cwd=ROOT, timeout=1200, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.load(open(tmp_path / "animal" / "result.json"))
  assert result["label"].strip().lower() in IN_CONCEPT, result["label"]
  assert result["heldout"]["auc"] >= 0.85
  assert result["heldout"]["auc"] >= result["references"]["animal"]["auc"] - 0.05
