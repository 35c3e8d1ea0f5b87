"""genjax.data.tabular: the bundled UCI sets, image pairs and seeded splits."""

import numpy as np
import pytest

from genjax.data import tabular


@pytest.mark.parametrize("name,shape,classes", [("breast_cancer", (569, 30), 2),
                                                ("wine", (178, 13), 3), ("iris", (150, 4), 3),
                                                ("digits", (1797, 64), 10)])
def test_uci_sets(name, shape, classes):
  d = tabular.load(name)
  assert d.x.shape == shape and d.x.dtype == np.float32 and d.num_classes == classes
  assert set(np.unique(d.y)) == set(range(classes))


def test_image_pair_relabels_and_scales():
  images = np.array([[[255]], [[0]], [[128]]], np.uint8)
  d = tabular.image_pair(images, np.array([3, 5, 4]), 3, 5)
  np.testing.assert_array_equal(d.y, [0, 1])
  np.testing.assert_allclose(d.x[:, 0], [1.0, 0.0])


def test_split_is_seeded_disjoint_and_stratified():
  d = tabular.load("iris")
  tr, te = tabular.train_test_split(d, 3, key_seed=7)
  assert sorted(tr.y) == [0, 1, 2] and len(te) == 147
  tr2, _ = tabular.train_test_split(d, 3, key_seed=7)
  np.testing.assert_array_equal(tr.x, tr2.x)
  # Together the two parts are the data set, each row once.
  both = np.concatenate([tr.x, te.x])
  np.testing.assert_array_equal(both[np.lexsort(both.T)], d.x[np.lexsort(d.x.T)])
  with pytest.raises(ValueError):
    tabular.train_test_split(d, 150, key_seed=0)
