"""The scripts' persistent compilation cache (genjax.compilation_cache): on by default, off on
request, never where it is unsafe or where JAX was already told where to cache."""

import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, TRAIN_SCRIPT

from genjax import compilation_cache


@pytest.fixture
def no_cache_settings(monkeypatch):
  for name in ("GENJAX_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR", "XLA_FLAGS"):
    monkeypatch.delenv(name, raising=False)
  enabled = []
  monkeypatch.setattr(compilation_cache, "enable", lambda path=None: enabled.append(path) or
                      (path or compilation_cache.DEFAULT_DIR))
  return enabled


def test_on_by_default_in_the_default_folder(no_cache_settings):
  assert compilation_cache.enable_for_scripts() == compilation_cache.DEFAULT_DIR
  assert no_cache_settings == [None]


@pytest.mark.parametrize("setting", [{"GENJAX_COMPILATION_CACHE": "off"},
                                     {"GENJAX_COMPILATION_CACHE": "0"},
                                     {"JAX_COMPILATION_CACHE_DIR": "/elsewhere"},
                                     {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}])
def test_off_when_refused_or_already_chosen_or_unsafe(no_cache_settings, monkeypatch, setting):
  for name, value in setting.items():
    monkeypatch.setenv(name, value)
  assert compilation_cache.enable_for_scripts() is None
  assert compilation_cache.enable_for_scripts(wanted=False) is None
  assert no_cache_settings == []


def test_a_folder_named_in_the_environment_is_used(no_cache_settings, monkeypatch):
  monkeypatch.setenv("GENJAX_COMPILATION_CACHE", "/tmp/my_cache")
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  assert compilation_cache.enable_for_scripts() == "/tmp/my_cache"


def _fit(tmp_path, cache, *extra):
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_COMPILATION_CACHE_DIR", "XLA_FLAGS")}
  env.update(GENJAX_COMPILATION_CACHE=str(cache), JAX_PLATFORMS="cpu")
  config = REPO_ROOT / "experiments" / "configs" / "nearest_mean.py"
  return subprocess.run([sys.executable, str(TRAIN_SCRIPT), f"--config={config}:iris,smoke",
                         f"--workdir={tmp_path / 'run'}", *extra], env=env, cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=300)


def test_a_script_fills_the_cache_unless_told_not_to(tmp_path):
  cache = tmp_path / "cache"
  off = _fit(tmp_path, cache, "--nocompilation_cache")
  assert off.returncode == 0, off.stderr[-2000:]
  assert not cache.exists() or not any(cache.iterdir())
  on = _fit(tmp_path / "second", cache)
  assert on.returncode == 0, on.stderr[-2000:]
  assert any(cache.iterdir()), "the fit's programs were not cached"
