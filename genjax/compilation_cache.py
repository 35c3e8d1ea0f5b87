"""JAX's persistent compilation cache, on by default for the experiment scripts.

JAX keeps compiled programs on disk, so that a new process (a resume, `evaluate.py`, a second
fit of the same shapes) loads a program instead of compiling it again: on a CPU that is most
of a closed-form model's time and seconds of every resume.

    from genjax import compilation_cache
    compilation_cache.enable()   # $GENJAX_COMPILATION_CACHE, else ~/.cache/genjax/jax

The scripts call `enable_for_scripts()` through genjax.cli.run: the cache is on unless
`--nocompilation_cache` is given or $GENJAX_COMPILATION_CACHE is `0` / `off`. It stays off
where JAX's own $JAX_COMPILATION_CACHE_DIR already chooses a folder (JAX then uses that one),
and where XLA_FLAGS splits the CPU into several devices
(--xla_force_host_platform_device_count), where cached multi-device programs have deadlocked
in a collective.
"""

import os
import re

import jax

DEFAULT_DIR = os.path.join(os.environ.get("XDG_CACHE_HOME")
                           or os.path.join(os.path.expanduser("~"), ".cache"), "genjax", "jax")
OFF = ("0", "off", "false", "no")


def enable(path: str | None = None, min_compile_seconds: float = 0.0) -> str:
  """Cache every program that took at least `min_compile_seconds` to compile in `path`
  (default: $GENJAX_COMPILATION_CACHE, else DEFAULT_DIR); returns the directory used."""
  path = path or os.environ.get("GENJAX_COMPILATION_CACHE") or DEFAULT_DIR
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)
  return path


def disable() -> None:
  """Stop caching: programs compiled from now on are neither read from nor written to disk."""
  from jax.experimental.compilation_cache import compilation_cache
  jax.config.update("jax_compilation_cache_dir", None)
  compilation_cache.reset_cache()  # JAX keeps the cache it opened until it is reset


def enable_for_scripts(wanted: bool = True) -> str | None:
  """The scripts' default: `enable()` unless `wanted` is False, $GENJAX_COMPILATION_CACHE is
  one of OFF, JAX's own cache folder is set, or the CPU is split into several devices. Returns
  the folder in use, or None."""
  setting = os.environ.get("GENJAX_COMPILATION_CACHE", "")
  if not wanted or setting.lower() in OFF or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return None
  if forced_host_devices() > 1:
    return None
  return enable(setting or None)


def forced_host_devices() -> int:
  """The CPU devices XLA_FLAGS asks for (1 when it does not), read without starting a backend
  (a multi-host run must call jax.distributed.initialize first)."""
  match = re.search(r"--xla_force_host_platform_device_count=(\d+)",
                    os.environ.get("XLA_FLAGS", ""))
  return int(match.group(1)) if match else 1
