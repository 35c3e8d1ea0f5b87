"""Start a multi-process (multi-host style) JAX run on this machine: one command, N processes.

  python -m genjax.launch --processes=2 -- python experiments/train.py --config=... --workdir=...

Each process gets the coordinator's address, the process count and its id in the environment
(JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, read by genjax.distributed), and,
with `--cpu_devices=K`, K simulated CPU devices and CPU collectives (gloo). SIGINT and SIGTERM
are forwarded to every process; when one process fails, the others are stopped at once (they
would wait for it in their next collective). The exit status is the first failure's, else 0.

On a Cloud TPU pod or a GPU cluster the cluster's own launcher starts the processes instead
(see the README); this is the same program on one machine, for tests and for trying a
multi-process run before paying for one.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_env(base: dict, address: str, processes: int, index: int,
                cpu_devices: int | None) -> dict:
  env = {**base, "JAX_COORDINATOR_ADDRESS": address, "JAX_NUM_PROCESSES": str(processes),
         "JAX_PROCESS_ID": str(index)}
  if cpu_devices:
    flags = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                     if not f.startswith("--xla_force_host_platform_device_count"))
    env.update(JAX_PLATFORMS="cpu", GENJAX_CPU_COLLECTIVES="gloo",
               XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={cpu_devices}".strip())
  return env


def launch(command: list[str], processes: int, cpu_devices: int | None = None,
           grace_seconds: float = 5.0) -> int:
  """Run `command` as `processes` processes; the exit status of the run (see the module)."""
  address = f"127.0.0.1:{free_port()}"
  procs = [subprocess.Popen(command, env=process_env(dict(os.environ), address, processes, i,
                                                     cpu_devices))
           for i in range(processes)]
  print(f"launch: {processes} processes, pids {[p.pid for p in procs]}, coordinator {address}",
        file=sys.stderr, flush=True)

  def forward(signum, frame):
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
  status, reported = 0, set()
  try:
    while True:
      running = any(p.poll() is None for p in procs)
      failed = [(i, p.returncode) for i, p in enumerate(procs)
                if p.returncode not in (None, 0) and i not in reported]
      for n, (i, code) in enumerate(failed):
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        stopping = "; stopping the others" if running and not status and n == 0 else ""
        print(f"launch: process {i} {how}{stopping}", file=sys.stderr, flush=True)
        reported.add(i)
      if failed and not status:
        status = failed[0][1]
        deadline = time.monotonic() + grace_seconds
        for p in procs:
          if p.poll() is None:
            p.terminate()
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
          time.sleep(0.1)
        for p in procs:
          if p.poll() is None:
            p.kill()
      if not running:
        break
      time.sleep(0.1)
    if not status:
      status = next((p.returncode for p in procs if p.returncode), 0)
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    for p in procs:
      if p.poll() is None:
        p.kill()
  return status if status >= 0 else 128 - status  # killed by signal N: 128 + N, as a shell


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--processes", type=int, required=True)
  parser.add_argument("--cpu_devices", type=int, default=None,
                      help="simulated CPU devices per process (JAX_PLATFORMS=cpu, gloo)")
  parser.add_argument("command", nargs=argparse.REMAINDER,
                      help="-- then the command every process runs")
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command or args.processes < 1:
    parser.error("need --processes >= 1 and a command after --")
  return launch(command, args.processes, args.cpu_devices)


if __name__ == "__main__":
  sys.exit(main())
