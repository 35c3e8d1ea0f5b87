"""CoNLL chunk scores exactly as conlleval.pl (v2.0) defines them: chunk P/R/F1 and tag accuracy.

A tag is `PREFIX-TYPE` (e.g. `B-NP`, `I-VP`) or a bare prefix (`O`); the prefix is what precedes
the first hyphen. conlleval's rules decide where chunks start and end, which matters for ill-formed
IOB: `I-X` after `O` or after a chunk of another type starts a new chunk (IOB1/IOB2 both work), and
`B-X` always starts one. `E-` (IOE) and the bracket tags `[` `]` follow conlleval too.

    chunks(["B-NP", "I-NP", "O", "I-VP"])  ->  {("NP", 0, 2), ("VP", 3, 4)}   # end exclusive
    conll_f1(gold_sentences, predicted_sentences)["f1"]  ->  percentage, as conlleval prints it
"""

from collections.abc import Sequence


def split_tag(tag: str) -> tuple[str, str]:
  """(prefix, type) of a tag: `B-NP` -> (`B`, `NP`), `O` -> (`O`, ``); types may hold hyphens."""
  prefix, hyphen, kind = tag.partition("-")
  return (prefix, kind) if hyphen else (tag, "")


def end_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
  """Whether a chunk ended between the previous token and this one (conlleval's endOfChunk)."""
  if (prev_tag, tag) in {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"),
                         ("E", "E"), ("E", "I"), ("E", "O")}:
    return True
  if prev_tag not in ("O", ".") and prev_type != kind:
    return True
  return prev_tag in ("[", "]")  # bracket chunks have length one


def start_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
  """Whether a chunk started between the previous token and this one (conlleval's startOfChunk)."""
  if (prev_tag, tag) in {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"),
                         ("E", "E"), ("E", "I"), ("O", "E")}:
    return True
  if tag not in ("O", ".") and prev_type != kind:
    return True
  return tag in ("[", "]")


def chunks(tags: Sequence[str]) -> set[tuple[str, int, int]]:
  """The chunks of one sentence's tags as a set of (type, start, end), `end` exclusive.

  A chunk opens where conlleval's start rule fires and closes where its end rule fires, with an
  `O` after the last token (conlleval's sentence boundary).
  """
  found, start = set(), None
  prev_tag, prev_type = "O", ""
  for i, tag in enumerate([*tags, "O"]):
    prefix, kind = split_tag(tag)
    if start is not None and end_of_chunk(prev_tag, prefix, prev_type, kind):
      found.add((prev_type, start, i))
      start = None
    if start_of_chunk(prev_tag, prefix, prev_type, kind):
      start = i
    prev_tag, prev_type = prefix, kind
  return found


def _scores(correct: int, guessed: int, gold: int) -> dict:
  precision = 100.0 * correct / guessed if guessed else 0.0
  recall = 100.0 * correct / gold if gold else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return {"precision": precision, "recall": recall, "f1": f1,
          "correct": correct, "guessed": guessed, "gold": gold}


def conll_f1(gold_sentences: Sequence[Sequence[str]],
             predicted_sentences: Sequence[Sequence[str]]) -> dict:
  """conlleval's scores of predicted chunk tags against gold ones, sentence by sentence.

  Takes two equally shaped lists of tag sequences. Returns percentages as conlleval prints them:
  {"precision", "recall", "f1", "accuracy" (token tag accuracy), "correct", "guessed", "gold"
  (chunk counts), "tokens", "by_type": {type: {"precision", "recall", "f1", "correct",
  "guessed", "gold"}}}, types sorted. The counting is a port of conlleval's state machine (a
  chunk is correct when both start together with one type and both end together), with a
  boundary `O` between sentences.
  """
  if len(gold_sentences) != len(predicted_sentences):
    raise ValueError(f"{len(gold_sentences)} gold sentences but {len(predicted_sentences)} "
                     "predicted ones")
  correct_chunk = found_correct = found_guessed = correct_tags = tokens = 0
  by_correct, by_gold, by_guessed = {}, {}, {}
  in_correct = False
  last_c, last_g, last_ct, last_gt = "O", "O", "", ""
  for number, (gold, guess) in enumerate(zip(gold_sentences, predicted_sentences, strict=True)):
    if len(gold) != len(guess):
      raise ValueError(f"sentence {number}: {len(gold)} gold tags but {len(guess)} predicted")
    # None marks the boundary line conlleval reads between sentences (tags O, not a token).
    for pair in [*zip(gold, guess, strict=True), None]:
      c, ct = split_tag(pair[0]) if pair else ("O", "")
      g, gt = split_tag(pair[1]) if pair else ("O", "")
      end_c = end_of_chunk(last_c, c, last_ct, ct)
      end_g = end_of_chunk(last_g, g, last_gt, gt)
      start_c = start_of_chunk(last_c, c, last_ct, ct)
      start_g = start_of_chunk(last_g, g, last_gt, gt)
      if in_correct:
        if end_c and end_g and last_gt == last_ct:
          in_correct = False
          correct_chunk += 1
          by_correct[last_ct] = by_correct.get(last_ct, 0) + 1
        elif end_c != end_g or gt != ct:
          in_correct = False
      if start_c and start_g and gt == ct:
        in_correct = True
      if start_c:
        found_correct += 1
        by_gold[ct] = by_gold.get(ct, 0) + 1
      if start_g:
        found_guessed += 1
        by_guessed[gt] = by_guessed.get(gt, 0) + 1
      if pair is not None:
        correct_tags += int(c == g and ct == gt)
        tokens += 1
      last_c, last_g, last_ct, last_gt = c, g, ct, gt
  if in_correct:
    correct_chunk += 1
    by_correct[last_ct] = by_correct.get(last_ct, 0) + 1
  result = _scores(correct_chunk, found_guessed, found_correct)
  result["accuracy"] = 100.0 * correct_tags / tokens if tokens else 0.0
  result["tokens"] = tokens
  result["by_type"] = {
      kind: _scores(by_correct.get(kind, 0), by_guessed.get(kind, 0), by_gold.get(kind, 0))
      for kind in sorted(set(by_gold) | set(by_guessed))}
  return result


def report(scores: dict) -> str:
  """conlleval's printed summary of `conll_f1`'s result, one line per chunk type."""
  lines = [f"processed {scores['tokens']} tokens with {scores['gold']} phrases; "
           f"found: {scores['guessed']} phrases; correct: {scores['correct']}.",
           f"accuracy: {scores['accuracy']:6.2f}%; precision: {scores['precision']:6.2f}%; "
           f"recall: {scores['recall']:6.2f}%; FB1: {scores['f1']:6.2f}"]
  for kind, s in scores["by_type"].items():
    lines.append(f"{kind:>17}: precision: {s['precision']:6.2f}%; recall: {s['recall']:6.2f}%; "
                 f"FB1: {s['f1']:6.2f}  {s['guessed']}")
  return "\n".join(lines)
