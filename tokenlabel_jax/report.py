"""The run report: `python -m tokenlabel_jax.report DIR` writes DIR/index.html and DIR/<feature>/report.html.

Researchers judge a label by the contexts it explains, so the report shows them: one sortable, filterable row per
feature, and a page per feature with its top-activating contexts shaded by activation (as SAE dashboards do), the
held-out examples with the label's score beside the activation (hits and misses marked), the candidate table and the
trajectory plot. Every page is one self-contained file (inline CSS and script, the plot as a data URI): it opens from
the file system on a cluster that reaches no CDN.

It reads what labeling wrote (result.json, examples.json, trajectory.png) defensively: any key may be missing and the
label may be null (no candidate beat chance), so reports of older or newer runs still render.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import sys
import urllib.parse
from typing import Any, Sequence

from tokenlabel_jax import runfiles
from tokenlabel_jax.errors import UserError, exit_on_user_error

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#222}
h1{font-size:1.4em;margin:.2em 0} h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse} th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none;white-space:nowrap} th.sorted-asc:after{content:" \\25B2"}
th.sorted-desc:after{content:" \\25BC"} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.label{font-family:ui-monospace,monospace;background:#eef;padding:0 3px;border-radius:3px;white-space:pre}
.none{color:#a00;font-style:italic} .muted{color:#777} .ctx{font-family:ui-monospace,monospace;white-space:pre-wrap}
.tok{border-radius:2px} .hl{outline:2px solid #c60;border-radius:2px}
tr.miss{background:#fdecea} tr.hit{background:#eef8ee}
#filter{font-size:14px;padding:4px;width:28em;margin:.4em 0} .bar{display:inline-block;height:10px;background:#48c}
"""

# Sorting and filtering, inline. The state can be given in the URL's fragment (#q=anim&sort=auc&desc=1), so a
# filtered view is a link, and a headless browser can check that the script really runs.
_INDEX_JS = """
(function(){
  var table=document.getElementById('features'), body=table.tBodies[0], input=document.getElementById('filter');
  var rows=Array.prototype.slice.call(body.rows), state={q:'',sort:null,desc:false};
  function key(row,col){var c=row.querySelector('td[data-col="'+col+'"]'); if(!c) return '';
    var v=c.getAttribute('data-v'); if(v===null) v=c.textContent; var f=parseFloat(v);
    return (v!=='' && !isNaN(f) && isFinite(v))?f:v.toLowerCase();}
  function apply(){
    var q=state.q.toLowerCase(), shown=0;
    if(state.sort){rows.sort(function(a,b){var x=key(a,state.sort), y=key(b,state.sort);
      if(typeof x!==typeof y){x=String(x); y=String(y);} var r=x<y?-1:x>y?1:0; return state.desc?-r:r;});
      rows.forEach(function(r){body.appendChild(r);});}
    rows.forEach(function(r){var ok=!q||r.textContent.toLowerCase().indexOf(q)>=0; r.style.display=ok?'':'none';
      if(ok) shown++;});
    document.getElementById('shown').textContent=shown;
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th){th.className=
      th.getAttribute('data-col')===state.sort?(state.desc?'sorted-desc':'sorted-asc'):'';});
  }
  var h=location.hash.replace(/^#/,'').split('&');
  h.forEach(function(kv){var p=kv.split('='); var k=p[0], v=decodeURIComponent(p.slice(1).join('=')||'');
    if(k==='q') state.q=v; if(k==='sort') state.sort=v; if(k==='desc') state.desc=v==='1';});
  input.value=state.q;
  input.addEventListener('input',function(){state.q=input.value; apply();});
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th){th.addEventListener('click',function(){
    var c=th.getAttribute('data-col'); state.desc=state.sort===c?!state.desc:false; state.sort=c; apply();});});
  apply();
})();
"""


def _e(x: Any) -> str:
  return html.escape(str(x), quote=True)


def _num(x: Any) -> float | None:
  return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x)) else None


def _fmt(x: Any, digits: int = 3) -> str:
  v = _num(x)
  return "—" if v is None else f"{v:.{digits}f}"


def _get(d: Any, *path: str) -> Any:
  for k in path:
    if not isinstance(d, dict):
      return None
    d = d.get(k)
  return d


def _scorer_auc(result: dict[str, Any]) -> float | None:
  """The independent scorer's held-out AUC of the label (result.json: scorer.label.auc)."""
  return _num(_get(result.get("scorer"), "label", "auc"))


def _label_html(result: dict[str, Any]) -> str:
  label = result.get("label")
  if isinstance(label, str):
    return f'<span class="label">{_e(label)}</span>'
  best = result.get("best_candidate")
  extra = f' (best candidate <span class="label">{_e(best)}</span>)' if isinstance(best, str) else ""
  return f'<span class="none">no label</span>{extra}'


def _label_text(result: dict[str, Any]) -> str:
  label = result.get("label")
  return label if isinstance(label, str) else ""


def _candidates(result: dict[str, Any], k: int | None = None) -> list[dict[str, Any]]:
  rows = [r for r in result.get("verification") or [] if isinstance(r, dict)]
  rows.sort(key=lambda r: _num(r.get("val_loss")) if _num(r.get("val_loss")) is not None else math.inf)
  return rows[:k] if k else rows


def _next_labels(result: dict[str, Any]) -> list[str]:
  """What the choice rule ranked after the label (`runners_up`), or, for a run older than that field, the 5 best
  candidates by validation loss."""
  nexts = result.get("runners_up")
  if isinstance(nexts, list):
    return [str(n[0]) for n in nexts if isinstance(n, list) and n]
  return [str(c.get("label", "")) for c in _candidates(result, 5)]


def _page(title: str, body: str, script: str = "") -> str:
  return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
          f"<style>{_CSS}</style></head><body>\n{body}\n" + (f"<script>{script}</script>" if script else "")
          + "</body></html>\n")


# ----------------------------------------------------------------------------------------------------------------
# Reading a run.


def read_run(run_dir: str) -> list[dict[str, Any]]:
  """Every DIR/<feature>/result.json, in summary.json's order, then by name; unreadable files are skipped."""
  if not os.path.isdir(run_dir):
    raise UserError(f"{run_dir}: no such directory", "pass the --output_dir of a label run")
  order: list[str] = []
  try:
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
      order = [k for k in json.load(f) if isinstance(k, str)]
  except (OSError, ValueError, TypeError):
    pass
  names = sorted(n for n in os.listdir(run_dir) if os.path.isfile(os.path.join(run_dir, n, "result.json")))
  names = [n for n in order if n in names] + [n for n in names if n not in order]
  results = []
  for name in names:
    try:
      with open(os.path.join(run_dir, name, "result.json"), encoding="utf-8") as f:
        r = json.load(f)
    except (OSError, ValueError) as e:
      print(f"warning: {name}/result.json unreadable ({type(e).__name__}); left out of the report", file=sys.stderr)
      continue
    if isinstance(r, dict):
      r["_dir"] = name
      r.setdefault("feature", name)
      results.append(r)
  return results


def _read_examples(feature_dir: str) -> dict[str, Any]:
  try:
    with open(os.path.join(feature_dir, "examples.json"), encoding="utf-8") as f:
      d = json.load(f)
    return d if isinstance(d, dict) else {}
  except (OSError, ValueError):
    return {}


# ----------------------------------------------------------------------------------------------------------------
# The index.


def _scorer_title(results: Sequence[dict[str, Any]]) -> str:
  """'scorer AUC (likelihood)': the independent scorer's name beside its figure (all of them, if runs were mixed)."""
  names = sorted({str(_get(r, "scorer", "discriminator")) for r in results if _get(r, "scorer", "discriminator")})
  return "scorer AUC" + (f" ({', '.join(names)})" if names else "")


def _baselines(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
  """The run's baselines (`tokenlabel_jax.baselines`) that have a figure; none in results of earlier versions."""
  base = result.get("baselines")
  return {k: v for k, v in base.items() if isinstance(v, dict)} if isinstance(base, dict) else {}


def _top_scorer_auc(result: dict[str, Any]) -> float | None:
  """The independent scorer's held-out AUC of the top token (result.json: scorer.baselines.top_token.auc)."""
  return _num(_get(result.get("scorer"), "baselines", "top_token", "auc"))


def _positive_words(result: dict[str, Any]) -> list[list[Any]]:
  """result.json's positive_words.top: [word, share] pairs, whatever else an earlier or damaged file holds there."""
  top = _get(result, "positive_words", "top")
  if not isinstance(top, list):
    return []
  return [w for w in top if isinstance(w, list) and len(w) == 2 and _num(w[1]) is not None]


def _figures_table(title: str, table_id: str, rows: Sequence[tuple[str, Any, Any]], scorer_title: str) -> str:
  """A feature page's table of labels scored on the held-out examples: label, AUC, accuracy, F1, and the independent
  scorer's AUC where it scored them. `rows`: (label, figures, the scorer's figures or None)."""
  scored = any(_num(_get(sv, "auc")) is not None for _, _, sv in rows)
  return (f'<h2>{_e(title)}</h2><table id="{table_id}"><thead><tr><th>label</th><th>held-out AUC</th>'
          "<th>accuracy</th><th>F1</th>" + (f"<th>{_e(scorer_title)}</th>" if scored else "") + "</tr></thead><tbody>"
          + "".join(f'<tr><td><span class="label">{_e(k)}</span></td><td class="num">{_fmt(_get(v, "auc"))}'
                    f'</td><td class="num">{_fmt(_get(v, "accuracy"))}</td><td class="num">'
                    f'{_fmt(_get(v, "f1"))}</td>'
                    + (f'<td class="num">{_fmt(_get(sv, "auc"))}</td>' if scored else "") + "</tr>"
                    for k, v, sv in rows) + "</tbody></table>")


def index_html(results: Sequence[dict[str, Any]], title: str) -> str:
  """The run's table. Only columns some feature has a value for: the scorer's AUC (beside the label's) where the run
  had an independent scorer, references where it scored some, the top token where the run scored it (runs of earlier
  versions did not; its scorer AUC too where the scorer scored it), the words that make up half of the positive
  tokens where results count them, the soft label's probability where a gradient ran (a default namer run has
  none)."""
  has_scorer = any(_scorer_auc(r) is not None for r in results)
  cols = [("feature", "feature"), ("label", "label"), ("auc", "held-out AUC")]
  if has_scorer:
    cols.append(("scorer", _scorer_title(results)))
  has_refs = any(isinstance(r.get("references"), dict) and r["references"] for r in results)
  if has_refs:
    cols.append(("refs", "reference labels (held-out AUC)"))
  has_top = any("top_token" in _baselines(r) for r in results)
  if has_top:
    cols.append(("top", "top token (held-out AUC)"))
  has_top_scored = has_top and any(_top_scorer_auc(r) is not None for r in results)
  if has_top_scored:  # beside the label's scorer AUC: whether it beats the top token under both discriminators
    cols.append(("top_scorer", "top token, " + _scorer_title(results)))
  has_words = any(_num(_get(r, "positive_words", "words_for_half")) is not None for r in results)
  if has_words:  # sorted by it, the latents one word carries come first
    cols.append(("words", "words for half its positives (commonest)"))
  has_p = any(_num(r.get("probability")) is not None for r in results)
  if has_p:
    cols.append(("p", "probability"))
  cols.append(("cands", "next candidates"))
  head = "".join(f'<th data-col="{c}">{_e(t)}</th>' for c, t in cols)
  rows = []
  for r in results:
    auc = _get(r, "heldout", "auc")
    refs = r.get("references") if isinstance(r.get("references"), dict) else {}
    ref_html = ", ".join(f'{_e(k)} {_fmt(_get(v, "auc"))}' for k, v in refs.items())
    best_ref = max((_num(_get(v, "auc")) for v in refs.values() if _num(_get(v, "auc")) is not None), default=None)
    cands = " ".join(f'<span class="label">{_e(c)}</span>' for c in _next_labels(r))
    cells = [f'<td data-col="feature" data-v="{_e(r["feature"])}">'
             f'<a href="{_e(urllib.parse.quote(r["_dir"]))}/report.html">'
             f'{_e(r["feature"])}</a></td>',
             f'<td data-col="label" data-v="{_e(_label_text(r))}">{_label_html(r)}</td>',
             f'<td data-col="auc" class="num" data-v="{_fmt(auc, 6) if _num(auc) is not None else ""}">'
             f'{_fmt(auc)}</td>']
    if has_scorer:
      s = _scorer_auc(r)
      cells.append(f'<td data-col="scorer" class="num" data-v="{"" if s is None else s}">{_fmt(s)}</td>')
    if has_refs:
      cells.append(f'<td data-col="refs" data-v="{"" if best_ref is None else best_ref}">{ref_html}</td>')
    if has_top:
      top = _baselines(r).get("top_token", {})
      top_auc = _num(_get(top, "auc"))
      cells.append(f'<td data-col="top" data-v="{"" if top_auc is None else top_auc}">'
                   f'{_e(top.get("label", ""))} {_fmt(top_auc) if top_auc is not None else ""}</td>')
    if has_top_scored:
      ts = _top_scorer_auc(r)
      cells.append(f'<td data-col="top_scorer" class="num" data-v="{"" if ts is None else ts}">{_fmt(ts)}</td>')
    if has_words:
      n = _num(_get(r, "positive_words", "words_for_half"))
      words = _positive_words(r)
      first = f' <span class="muted">({_e(words[0][0])} {_num(words[0][1]):.0%})</span>' if words else ""
      n_text = "" if n is None else f"{n:g}"
      cells.append(f'<td data-col="words" class="num" data-v="{n_text}">{n_text}{first if n_text else ""}</td>')
    if has_p:
      p = _num(r.get("probability"))
      cells.append(f'<td data-col="p" class="num" data-v="{"" if p is None else p}">{_fmt(p, 2)}</td>')
    cells.append(f'<td data-col="cands" data-v="{_e(" ".join(_next_labels(r)))}">'
                 f"{cands}</td>")
    rows.append(f'<tr data-feature="{_e(r["feature"])}">' + "".join(cells) + "</tr>")
  aucs = [_num(_get(r, "heldout", "auc")) for r in results]
  aucs = sorted(a for a in aucs if a is not None)
  median = aucs[len(aucs) // 2] if len(aucs) % 2 else (sum(aucs[len(aucs) // 2 - 1:len(aucs) // 2 + 1]) / 2
                                                       if aucs else None)
  models = sorted({str(r.get("model")) for r in results if r.get("model")})
  discs = sorted({str(r.get("discriminator")) for r in results if r.get("discriminator")})
  body = (f"<h1>{_e(title)}</h1><p>{len(results)} features"
          + (f"; median held-out AUC {_fmt(median)}" if median is not None else "")
          + (f"; model {_e(', '.join(models))}" if models else "")
          + (f"; discriminator {_e(', '.join(discs))}" if discs else "")
          + '. Click a column to sort, a feature for its contexts.</p>'
          '<input id="filter" type="search" placeholder="filter features, labels, candidates">'
          ' <span class="muted"><span id="shown">' + str(len(results)) + '</span> shown</span>'
          f'<table id="features"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(rows) + "\n</tbody></table>")
  return _page(title, body, _INDEX_JS)


# ----------------------------------------------------------------------------------------------------------------
# A feature's page.


def _shade(a: float, top: float) -> str:
  """A token's background: orange, its opacity the activation over the feature's top activation."""
  alpha = 0.0 if top <= 0 else max(0.0, min(1.0, a / top))
  return f"background:rgba(255,140,0,{alpha:.2f})"


def _tokens_html(tokens: Sequence[Any], acts: Sequence[Any] | None, top: float, highlight: int | None = None) -> str:
  out = []
  for i, t in enumerate(tokens):
    a = _num(acts[i]) if acts is not None and i < len(acts) else None
    style = f' style="{_shade(a, top)}"' if a is not None else ""
    title = f' title="{a:.3g}"' if a is not None else ""
    cls = "tok hl" if i == highlight else "tok"
    out.append(f'<span class="{cls}"{style}{title}>{_e(t)}</span>')
  return "".join(out)


def feature_html(result: dict[str, Any], examples: dict[str, Any], plot_png: bytes | None) -> str:
  name = str(result.get("feature"))
  parts = [f'<p><a href="../index.html">&larr; all features</a></p><h1>{_e(name)}: {_label_html(result)}</h1>']
  facts = [("held-out AUC", _fmt(_get(result, "heldout", "auc"))),
           ("accuracy", _fmt(_get(result, "heldout", "accuracy"))),
           ("F1", _fmt(_get(result, "heldout", "f1")))]
  if _num(result.get("probability")) is not None:  # only where a gradient ran
    facts.append(("probability", _fmt(result.get("probability"), 2)))
  if _scorer_auc(result) is not None:
    facts.insert(1, (_scorer_title([result]), _fmt(_scorer_auc(result))))
  for k in ("discriminator", "model", "steps", "seeds", "wall_time_s"):
    if result.get(k) is not None:
      facts.append((k.replace("_", " "), _e(result[k])))
  parts.append("<p>" + "; ".join(f"{k} <b>{v}</b>" for k, v in facts) + "</p>")
  if isinstance(result.get("hint"), str):  # why there is no label, when the run could tell
    parts.append(f'<p class="hint">{_e(result["hint"])}</p>')
  refs = result.get("references") if isinstance(result.get("references"), dict) else {}
  scorer = result.get("scorer") if isinstance(result.get("scorer"), dict) else {}
  if refs:
    parts.append(_figures_table("Reference labels", "references", [(k, v, scorer.get(k)) for k, v in refs.items()],
                                _scorer_title([result])))
  base = _baselines(result)
  if base:
    scored = _get(scorer, "baselines") if isinstance(_get(scorer, "baselines"), dict) else {}
    parts.append(_figures_table("Baselines on the same held-out examples", "baselines",
                                [(f'{v.get("label", "")} ({k.replace("_", " ")})', v, scored.get(k))
                                 for k, v in base.items()], _scorer_title([result])))
  words, half = _positive_words(result), _num(_get(result, "positive_words", "words_for_half"))
  if words:  # a feature spread over many words is one a one-word label can only summarize
    parts.append('<p id="positive-words">Words at its positive tokens (training texts): '
                 + ", ".join(f'<span class="label">{_e(w)}</span> {_num(share):.0%}' for w, share in words)
                 + (f'; {half:g} of them make up half of the {_e(_get(result, "positive_words", "occurrences"))} '
                    "occurrences" if half is not None else "") + ".</p>")

  top_records = [r for r in examples.get("top_records") or [] if isinstance(r, dict)]
  parts.append("<h2>Contexts with the highest activations</h2>")
  if top_records:
    top = max((_num(a) or 0.0 for r in top_records for a in r.get("activations") or []), default=0.0)
    lines = []
    for r in top_records:
      acts = r.get("activations") or []
      peak = max((_num(a) or 0.0 for a in acts), default=0.0)
      lines.append(f'<tr><td class="num">{peak:.3g}</td><td class="ctx">'
                   f'{_tokens_html(r.get("tokens") or [], acts, top)}</td><td class="muted">{_e(r.get("split") or "")}'
                   "</td></tr>")
    parts.append('<table id="top-contexts"><thead><tr><th>max act</th><th>text (shaded by activation)</th>'
                 "<th>split</th></tr></thead><tbody>" + "".join(lines) + "</tbody></table>")
  else:
    parts.append('<p class="muted">no examples.json in this run</p>')

  held = [h for h in examples.get("heldout") or [] if isinstance(h, dict)]
  parts.append("<h2>Held-out examples: the label's score against the activation</h2>")
  if held:
    scored = [h for h in held if _num(h.get("score")) is not None]
    top = max((_num(h.get("activation")) or 0.0 for h in held), default=0.0)
    held = sorted(held, key=lambda h: -(_num(h.get("score")) if _num(h.get("score")) is not None else -1))
    n_hit = sum((h["score"] > 0.5) == _positive(h) for h in scored)
    if scored:
      parts.append(f'<p>{n_hit} of {len(scored)} examples right at score 0.5 (green: hit, red: miss); '
                   "sorted by score.</p>")
    lines = []
    for h in held:
      s, t = _num(h.get("score")), _num(h.get("target")) or 0.0
      cls = "" if s is None else ("hit" if (s > 0.5) == _positive(h) else "miss")
      a = _num(h.get("activation"))
      bar = f'<span class="bar" style="width:{int(60 * s)}px"></span> ' if s is not None else ""
      lines.append(f'<tr class="{cls}"><td class="num">{bar}{_fmt(s)}</td><td class="num">{_fmt(a, 3)}</td>'
                   f'<td class="num">{_fmt(t, 2)}</td><td class="ctx">'
                   f'{_tokens_html(h.get("tokens") or [], None, top, h.get("index"))}</td></tr>')
    parts.append('<table id="heldout"><thead><tr><th>score</th><th>activation</th><th>target</th><th>context</th></tr>'
                 "</thead><tbody>" + "".join(lines) + "</tbody></table>")
  else:
    parts.append('<p class="muted">no held-out examples recorded</p>')

  cands = _candidates(result)
  parts.append("<h2>Candidates (scored exactly as hard labels; lowest validation loss first)</h2>")
  if cands:
    parts.append('<table id="candidates"><thead><tr><th>label</th><th>source</th><th>val loss</th><th>held-out AUC'
                 "</th><th>accuracy</th><th>F1</th></tr></thead><tbody>"
                 + "".join(f'<tr><td><span class="label">{_e(c.get("label", ""))}</span></td>'
                           f'<td>{_e(c.get("source", ""))}</td><td class="num">{_fmt(c.get("val_loss"))}</td>'
                           f'<td class="num">{_fmt(c.get("auc"))}</td><td class="num">{_fmt(c.get("accuracy"))}</td>'
                           f'<td class="num">{_fmt(c.get("f1"))}</td></tr>' for c in cands) + "</tbody></table>")
  top_k = result.get("top_k") or []
  if top_k:
    parts.append("<p>top of p: " + ", ".join(f'<span class="label">{_e(t[0])}</span> {_fmt(t[1], 2)}'
                                             for t in top_k if isinstance(t, list) and len(t) == 2) + "</p>")
  if result.get("steps") == 0:  # nothing to plot: the namer's exact scan found the label without a gradient run
    parts.append('<p class="muted">no gradient run: the label comes from the exact vocabulary scan '
                 '(--steps=N runs the optimization and plots its trajectory)</p>')
    return _page(f"{name}: {_label_text(result) or 'no label'}", "\n".join(parts))
  parts.append("<h2>Trajectory</h2>")
  if plot_png:
    parts.append(f'<img id="trajectory" alt="trajectory of {_e(name)}" '
                 f'src="data:image/png;base64,{base64.b64encode(plot_png).decode()}">')
  else:
    parts.append('<p class="muted">no trajectory.png</p>')
  return _page(f"{name}: {_label_text(result) or 'no label'}", "\n".join(parts))


# ----------------------------------------------------------------------------------------------------------------
# Writing.


def write_report(run_dir: str, title: str | None = None) -> str:
  """Writes DIR/index.html and each DIR/<feature>/report.html; returns the index's path."""
  results = read_run(run_dir)
  if not results:
    raise UserError(f"{run_dir} holds no <feature>/result.json", "pass the --output_dir of a finished label run")
  for r in results:
    feature_dir = os.path.join(run_dir, r["_dir"])
    try:
      with open(os.path.join(feature_dir, "trajectory.png"), "rb") as f:
        png = f.read()
    except OSError:
      png = None
    _write(os.path.join(feature_dir, "report.html"), feature_html(r, _read_examples(feature_dir), png))
  path = os.path.join(run_dir, "index.html")
  _write(path, index_html(results, title or f"tokenlabel_jax run: {os.path.basename(os.path.abspath(run_dir))}"))
  return path


def _write(path: str, text: str) -> None:
  runfiles.write_text(path, text, runfiles.FINISHED_REWRITE)


def _positive(h: dict) -> bool:
  """An example's class: activation > threshold, as recorded; files written before that field: target > 0.5."""
  if "positive" in h:
    return bool(h["positive"])
  return (_num(h.get("target")) or 0.0) > 0.5


@exit_on_user_error
def main(argv: Sequence[str]) -> None:
  if len(argv) != 2 or argv[1].startswith("-"):
    raise UserError("usage: python -m tokenlabel_jax.report RUN_DIR", "pass the --output_dir of a label run")
  print(write_report(argv[1]))


if __name__ == "__main__":
  main(sys.argv)
