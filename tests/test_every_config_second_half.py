"""The second half of every shipped config's smoke run (tests/test_every_config.py runs the
first; two modules so that the two halves run on two workers)."""

import pytest
from test_every_config import SECOND_HALF, check_smoke_run, read_each_split_once  # noqa: F401


@pytest.mark.parametrize("name", SECOND_HALF)
def test_smoke_run_trains_and_evaluates(name, tmp_path, experiment_script, tfds_data_dir):
  check_smoke_run(name, tmp_path, experiment_script, tfds_data_dir)
