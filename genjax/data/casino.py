"""The occasionally dishonest casino (Durbin et al. 1998) as a tagged corpus: simulated rolls.

A fair die and a loaded one (a six half the time, the other faces 0.1 each) switch with
probabilities 0.05 (fair to loaded) and 0.10 (loaded to fair); the first die is either with
probability 1/2. Each sequence of rolls is a `genjax.data.sequences.Sentence` whose words are
the faces ("1".."6") and whose POS and chunk tags are the die that rolled them ("F" fair, "L"
loaded), so that the HMM tagger family fits it: counted from the known dice, or by
Baum-Welch from the rolls alone (genjax.families.hmm_tagger, model.em_restarts).

The data section (`data_config`): `num_sequences` training sequences and `test_sequences` test
sequences of `length` rolls, drawn by NumPy generators seeded with [`sample_seed`, 0] and
[`sample_seed`, 1]; `validation_size` holds the last training sequences out
(genjax.data.splits).
"""

import ml_collections
import numpy as np

from genjax.data.sequences import Sentence

DICE = ("F", "L")  # fair, loaded
FACES = ("1", "2", "3", "4", "5", "6")
INITIAL = np.array([0.5, 0.5])
TRANSITION = np.array([[0.95, 0.05], [0.10, 0.90]])
EMISSION = np.array([[1 / 6] * 6, [0.1] * 5 + [0.5]])
_STREAMS = {"train": 0, "test": 1}


def data_config(num_sequences: int = 50, length: int = 300, test_sequences: int = 50,
                sample_seed: int = 0, batch_size: int = 128,
                validation_size: int = 0) -> ml_collections.ConfigDict:
  """The `data` section of the casino's simulated rolls (the module docstring)."""
  return ml_collections.ConfigDict({
      "name": "casino", "num_sequences": num_sequences, "length": length,
      "test_sequences": test_sequences, "sample_seed": sample_seed, "batch_size": batch_size,
      "validation_size": validation_size})


def sample(num_sequences: int, length: int, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
  """(dice [N, T], faces [N, T]) as indices of DICE and FACES: `num_sequences` independent
  sequences of `length` rolls of the casino's HMM."""
  if num_sequences < 1 or length < 1:
    raise ValueError(f"the casino needs at least one sequence of one roll, got {num_sequences} "
                     f"of {length}")
  dice = np.zeros((num_sequences, length), np.int32)
  dice[:, 0] = rng.random(num_sequences) < INITIAL[1]
  switch = rng.random((num_sequences, length))
  for t in range(1, length):
    # The die changes with the previous die's switching probability.
    dice[:, t] = np.where(switch[:, t] < TRANSITION[dice[:, t - 1], 1 - dice[:, t - 1]],
                          1 - dice[:, t - 1], dice[:, t - 1])
  cumulative = np.cumsum(EMISSION, 1)[dice]  # [N, T, 6]
  faces = (rng.random((num_sequences, length, 1)) > cumulative).sum(-1).astype(np.int32)
  return dice, np.minimum(faces, len(FACES) - 1)


def load(d: ml_collections.ConfigDict, part: str) -> list[Sentence]:
  """The training (`part` "train", before any validation hold-out) or test sequences of the
  data section `d` as sentences."""
  if part not in _STREAMS:
    raise ValueError(f"unknown casino part {part!r}; expected one of {tuple(_STREAMS)}")
  count = d.num_sequences if part == "train" else d.test_sequences
  dice, faces = sample(count, d.length, np.random.default_rng([d.sample_seed, _STREAMS[part]]))
  return [Sentence(tuple(FACES[f] for f in fs), tuple(DICE[z] for z in zs),
                   tuple(DICE[z] for z in zs)) for zs, fs in zip(dice, faces, strict=True)]
