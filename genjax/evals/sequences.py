"""Scores of sequence labellers (HMM tagger, CRF): token accuracy and conlleval chunk F1.

The family supplies `predict_split(state, split) -> list[list[str]]` (a tag per token of each
sentence of a SentenceSplit) and, optionally, `unknown_words(state, split) -> list[list[bool]]`
(tokens never seen in training), which splits the tagging accuracy into known and unknown words.
"""

import time

from genjax import family as family_lib
from genjax.evals.base import Context
from genjax.metrics.chunking import conll_f1
from genjax.structured.tagger import token_accuracy


def _predict(ctx: Context, split: str):
  ctx.require("predict_split")
  data = ctx.split(split)
  start = time.perf_counter()
  pred = ctx.family.predict_split(ctx.state, data)
  return data, pred, time.perf_counter() - start


def tagging(ctx: Context, split: str, target: str = "pos") -> dict:
  """accuracy (%) of the predicted tags against each sentence's `target` field; with the
  family's `unknown_words` hook also unknown_word_accuracy, known_word_accuracy and
  unknown_word_fraction; predict_seconds (compilation included)."""
  data, pred, seconds = _predict(ctx, split)
  gold = [list(getattr(s, target)) for s in data.sentences]
  out = {"accuracy": token_accuracy(gold, pred), "predict_seconds": seconds,
         "num_tokens": sum(map(len, gold)), "num_sentences": len(gold)}
  if family_lib.has_hook(ctx.family, "unknown_words"):
    unknown = ctx.family.unknown_words(ctx.state, data)
    out["unknown_word_accuracy"] = token_accuracy(gold, pred, unknown)
    out["known_word_accuracy"] = token_accuracy(gold, pred, [[not u for u in s] for s in unknown])
    out["unknown_word_fraction"] = 100.0 * sum(map(sum, unknown)) / max(out["num_tokens"], 1)
  return out


def chunking(ctx: Context, split: str) -> dict:
  """conlleval's chunk f1, precision, recall and tag accuracy (%) of the predicted chunk tags;
  per chunk type in `details`; predict_seconds (compilation included)."""
  data, pred, seconds = _predict(ctx, split)
  scores = conll_f1([list(s.chunks) for s in data.sentences], pred)
  return {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
          "accuracy": scores["accuracy"], "predict_seconds": seconds,
          "num_tokens": scores["tokens"], "num_sentences": len(pred),
          "details": {"by_type": scores["by_type"], "correct": scores["correct"],
                      "guessed": scores["guessed"], "gold": scores["gold"]}}
