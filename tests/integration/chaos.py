"""The fault run: many sagas, workers killed at random, one database restart; figures out.

``make chaos`` runs it on every SQL store (``python -m tests.integration.chaos``); a short
version runs in the test suite. Every step notes its side effects in the lab's ledger
(``do``/``done``/``undo``/``undone`` lines, one per call, in every process), so the
figures compare what the database says happened with what really ran.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sagakit as sk

from .harness import Lab, kill, lab_on

S = sk.SagaStatus
STEPS = ["s0", "s1", "s2", "s3"]


@dataclass
class Figures:
    """What a fault run found. A correct run has zeros everywhere but ``steps_rerun``."""

    backend: str
    sagas: int
    kills: int
    restarted: bool
    lost: int = 0  #: sagas not terminal, or missing, at the end
    duplicate_checkpoints: int = 0  #: a step_completed or compensation_completed written twice
    compensations_out_of_order: int = 0
    innocents_compensated: int = 0  #: sagas compensated that should have completed
    steps_rerun: int = (
        0  #: side effects that completed twice (a kill between them and the checkpoint)
    )
    seconds: float = 0.0
    #: Why the innocent sagas that were compensated ended so (first words of each error).
    why_compensated: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No saga lost, nothing written twice, every rollback in reverse order."""
        return not (
            self.lost
            or self.duplicate_checkpoints
            or self.compensations_out_of_order
            or self.innocents_compensated
        )


def _restart_database(backend: str) -> None:
    if backend == "postgres":
        version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True)
        cluster = ["pg_ctlcluster", "--skip-systemctl-redirect", version.stdout.split()[0]]
        subprocess.run([*cluster, "main", "restart"], check=True, timeout=120)
    elif backend == "mariadb":
        subprocess.run(["mariadb-admin", "-uroot", "shutdown"], check=True, timeout=120)
        subprocess.run(
            [
                "start-stop-daemon",
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/mariadbd",
            ],
            check=True,
        )
        for _ in range(120):
            if (
                subprocess.run(["mariadb-admin", "-uroot", "ping"], capture_output=True).returncode
                == 0
            ):
                return
            time.sleep(0.5)
        raise RuntimeError("MariaDB did not come back within a minute")


def soak(
    lab: Lab,
    backend: str,
    *,
    sagas: int,
    kills: int,
    workers: int = 3,
    restart: bool = False,
    seed: int = 2026,
    lease: float = 1.0,
) -> Figures:
    """Run ``sagas`` sagas while killing a worker ``kills`` times; return the figures."""
    rng = random.Random(seed)
    started = time.monotonic()
    contexts = {
        f"c{i:05d}": {"fail": "s3"} if i % 10 == 0 else {"sleep": {"s1": 0.01}}
        for i in range(sagas)
    }
    lab.start("crashy", contexts)
    options = ("--concurrency", "16", "--lease", str(lease))
    procs = [lab.spawn(*options) for _ in range(workers)]
    restart_at = kills // 2 if restart else -1
    for n in range(kills):
        time.sleep(rng.uniform(0.2, 0.8))  # a random moment in the run, not a wait for it
        victim = rng.randrange(len(procs))
        kill(procs[victim])
        procs[victim] = lab.spawn(*options)
        if n == restart_at:
            _restart_database(backend)
    deadline = time.monotonic() + 900
    while not all(r.is_terminal for r in lab.sagas()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for proc in procs:
        kill(proc, signal.SIGTERM)
        proc.wait(timeout=60)
    return measure(lab, backend, sagas, kills, restart, time.monotonic() - started)


def measure(
    lab: Lab, backend: str, sagas: int, kills: int, restart: bool, seconds: float
) -> Figures:
    """Compare the store's history with the ledger of what ran."""
    figures = Figures(backend, sagas, kills, restart, seconds=round(seconds, 1))
    records = {r.id: r for r in lab.sagas()}
    history = lab.all_events()
    calls = Counter((n[1], n[2], n[3]) for n in lab.notes())
    figures.lost = sagas - sum(1 for r in records.values() if r.is_terminal)
    for saga_id, record in records.items():
        events = history[saga_id]
        done = [e.step for e in events if e.type == "step_completed"]
        undone = [e.step for e in events if e.type == "compensation_completed"]
        figures.duplicate_checkpoints += len(done) - len(set(done))
        figures.duplicate_checkpoints += len(undone) - len(set(undone))
        if record.status == S.COMPENSATED and undone != list(reversed(done)):
            figures.compensations_out_of_order += 1
        if record.status == S.COMPENSATED and not saga_id.endswith("0"):
            figures.innocents_compensated += 1
            why = " ".join((record.error_message or "?").split()[:8])
            figures.why_compensated[why] = figures.why_compensated.get(why, 0) + 1
        figures.steps_rerun += sum(max(calls["done", step, saga_id] - 1, 0) for step in STEPS)
    return figures


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.integration.chaos``: the fault run on each chosen store."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres,mariadb")
    parser.add_argument("--sagas", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=45)
    parser.add_argument("--no-restart", action="store_true", help="skip the database restart")
    parser.add_argument(
        "--lease",
        type=float,
        default=10.0,
        help="worker lease in seconds; keep it longer than the database restart, or every "
        "saga running through the outage is taken for crashed",
    )
    args = parser.parse_args(argv)
    failed = False
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            for lab in lab_on(backend, Path(tmp)):
                figures = soak(
                    lab,
                    backend,
                    sagas=args.sagas,
                    kills=args.kills,
                    restart=not args.no_restart and backend != "sqlite",
                    lease=args.lease,
                )
        print(
            " ".join(f"{k}={v}" for k, v in asdict(figures).items()),
            "ok" if figures.ok else "FAILED",
        )
        failed |= not figures.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
