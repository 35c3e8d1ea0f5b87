"""The side-by-side timing of `benchmark.py --peers` (experiments/benchmarks/_peers.py)."""

import pytest
from benchmarks import _peers


def test_side_by_side_alternates_peer_first_and_reports_medians(monkeypatch):
  order = []
  clock = iter([0.0, 3.0, 3.0, 4.0, 4.0, 9.0, 9.0, 11.0, 11.0, 12.0, 12.0, 13.0])
  monkeypatch.setattr(_peers.time, "perf_counter", lambda: next(clock))

  def genjax():
    order.append("genjax")
    return {"accuracy": 0.9 + 0.01 * order.count("genjax")}

  def peer():
    order.append("peer")
    return {"accuracy": 0.8}

  out = _peers.side_by_side(genjax, peer, "lib", repeats=3)
  assert order == ["peer", "genjax"] * 3
  # Peer runs took 3, 5, 1 s; genjax runs 1, 2, 1 s: medians 3 and 1.
  assert out["peer"]["seconds_each"] == [3.0, 5.0, 1.0] and out["peer"]["seconds"] == 3.0
  assert out["genjax"]["seconds_each"] == [1.0, 2.0, 1.0] and out["genjax"]["seconds"] == 1.0
  assert out["time_ratio"] == pytest.approx(1.0 / 3.0)
  assert out["genjax"]["accuracy"] == pytest.approx(0.93)  # the last run's quality
  assert out["peer"]["name"] == "lib"


def test_a_missing_peer_runs_genjax_alone():
  out = _peers.side_by_side(lambda: {"f1": 1.0}, None, "lib", repeats=2)
  assert len(out["genjax"]["seconds_each"]) == 2 and "time_ratio" not in out
  assert "not installed" in out["peer"]["missing"]
  assert _peers.load("a_module_that_does_not_exist") is None
  with pytest.raises(ValueError, match="repeats"):
    _peers.side_by_side(lambda: {}, None, "lib", repeats=0)
