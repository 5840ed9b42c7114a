"""PNG plots for people: the loss parts and the leading token probabilities over the optimization."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


def trajectory(history: Sequence[dict[str, Any]], path: str, title: str,
               token_str: Callable[[int], str]) -> None:
  """Left: loss parts of the best seed (lowest final L_acc). Right: that seed's top-token probability, annotated."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  if not history:
    return
  acc = np.array([h["acc"] for h in history])  # steps x seeds
  seed = int(np.argmin(acc[-1]))
  steps = np.arange(1, len(history) + 1)
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
  for key in ("loss", "acc", "entropy", "kl"):
    ax1.plot(steps, [h[key][seed] for h in history], label={"acc": "L_acc", "entropy": "H(p)", "kl": "KL(p||q)"
                                                            }.get(key, "total"))
  ax1.set_xlabel("step")
  ax1.set_yscale("symlog", linthresh=0.1)
  ax1.legend()
  ax1.set_title(f"loss parts (seed {seed})")
  top_p = np.array([h["top_p"][seed][0] for h in history])
  top_id = [h["top_id"][seed][0] for h in history]
  for s in range(acc.shape[1]):
    ax2.plot(steps, [h["top_p"][s][0] for h in history], alpha=0.35 if s != seed else 1.0,
             label=f"seed {s}" if acc.shape[1] <= 8 else None)
  marks = sorted({0, len(history) // 4, len(history) // 2, 3 * len(history) // 4, len(history) - 1})
  for i in marks:
    ax2.annotate(repr(token_str(int(top_id[i]))), (steps[i], top_p[i]), fontsize=8, rotation=20)
  ax2.set_ylim(0, 1.05)
  ax2.set_xlabel("step")
  ax2.set_title("top token probability")
  ax2.legend(fontsize=7)
  fig.suptitle(title)
  fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, top=0.84, wspace=0.18)  # tight_layout costs a third
  fig.savefig(path, dpi=90)
  plt.close(fig)
