"""Crash recovery with real worker processes killed by SIGKILL, frozen by SIGSTOP, or stopped."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sagakit as sk

from .harness import LEASE, Lab, assert_consistent, kill, lab_on

STEPS = ["s0", "s1", "s2", "s3"]
S = sk.SagaStatus


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    yield from lab_on(request.param, tmp_path)


def test_kill_before_the_first_checkpoint(lab: Lab) -> None:
    # Given sagas whose first step is still running
    lab.start("crashy", {f"a{i}": {"sleep": {"s0": 2}} for i in range(3)})
    worker = lab.spawn()
    lab.wait_for("do", "s0", count=3)
    # When the worker is killed
    kill(worker)
    time.sleep(LEASE)
    lab.finish()
    # I expect every saga completed, the interrupted step re-run, checkpointed once
    for saga in lab.sagas():
        assert saga.status == S.COMPLETED
        assert_consistent(lab, saga, STEPS)
        assert lab.count("do", "s0", saga.id) == 2


def test_kill_in_the_middle_of_a_step(lab: Lab) -> None:
    lab.start("crashy", {"m": {"sleep": {"s2": 2}}})
    worker = lab.spawn()
    lab.wait_for("do", "s2")
    kill(worker)
    time.sleep(LEASE)
    lab.finish()
    saga = lab.saga("m")
    assert saga.status == S.COMPLETED
    assert_consistent(lab, saga, STEPS)
    assert (lab.count("do", "s1"), lab.count("do", "s2")) == (1, 2)


def test_kill_right_after_a_checkpoint_between_two_steps(lab: Lab) -> None:
    lab.start("crashy", {"b": {}})
    worker = lab.spawn(env={"SAGAKIT_KILL_AFTER": "step_completed:2"})
    assert worker.wait(timeout=60) == -signal.SIGKILL
    assert lab.saga("b").step_index == 2  # s0 and s1 checkpointed, then the kill
    time.sleep(LEASE)
    lab.finish()
    saga = lab.saga("b")
    assert saga.status == S.COMPLETED
    assert_consistent(lab, saga, STEPS)
    # checkpointed steps are not run again
    assert [lab.count("do", s) for s in STEPS] == [1, 1, 1, 1]


def test_kill_during_compensation(lab: Lab) -> None:
    lab.start("crashy", {"c": {"fail": "s3", "sleep": {"undo-s1": 2}}})
    worker = lab.spawn()
    lab.wait_for("undo", "s1")
    kill(worker)
    time.sleep(LEASE)
    lab.finish()
    saga = lab.saga("c")
    assert (saga.status, saga.reason) == (S.COMPENSATED, sk.Reason.ERROR)
    assert_consistent(lab, saga, STEPS)
    assert [lab.count("undone", s) for s in ("s2", "s1", "s0")] == [1, 1, 1]
    assert lab.count("undo", "s1") == 2  # interrupted once, then run again


def test_kill_right_after_a_compensation_checkpoint(lab: Lab) -> None:
    lab.start("crashy", {"k": {"fail": "s2"}})
    worker = lab.spawn(env={"SAGAKIT_KILL_AFTER": "compensation_completed:1"})
    assert worker.wait(timeout=60) == -signal.SIGKILL
    time.sleep(LEASE)
    lab.finish()
    saga = lab.saga("k")
    assert saga.status == S.COMPENSATED
    assert_consistent(lab, saga, STEPS)
    assert [lab.count("undo", s) for s in ("s1", "s0")] == [1, 1]


def test_twenty_random_kill_points_all_end_consistent(lab: Lab) -> None:
    rng = random.Random(20261122)
    contexts = {
        f"r{i}": {"fail": "s2"} if i % 3 == 0 else {"sleep": {s: 0.05 for s in STEPS}}
        for i in range(12)
    }
    lab.start("crashy", contexts)
    for _ in range(20):
        worker = lab.spawn("--concurrency", "4")
        time.sleep(rng.uniform(0.3, 1.2))
        kill(worker)
    time.sleep(LEASE)
    lab.finish()
    sagas = lab.sagas()
    assert len(sagas) == 12
    for saga in sagas:
        # A saga whose worker is killed again and again while it runs alone (as a suspect)
        # uses up its crash budget: FAILED for a person, by policy, never inconsistent.
        crash_budget = "stopped its worker process" in (saga.error_message or "")
        allowed = (S.COMPLETED, S.COMPENSATED) + ((S.FAILED,) if crash_budget else ())
        assert saga.status in allowed, (saga.id, saga.status, saga.error_message)
        assert_consistent(lab, saga, STEPS)
        if saga.id in ("r0", "r3", "r6", "r9"):
            assert saga.status in (S.COMPENSATED, S.FAILED)


def test_frozen_worker_loses_its_lease_and_its_late_checkpoint_is_rejected(lab: Lab) -> None:
    lab.start("crashy", {"z": {"sleep": {"s1": 3}}})
    frozen = lab.spawn()
    lab.wait_for("do", "s1")
    # When the worker freezes past its lease and another takes over and finishes
    frozen.send_signal(signal.SIGSTOP)
    time.sleep(LEASE * 1.5)
    rescuer = lab.spawn()
    lab.wait_until("z", [S.COMPLETED])
    # and the frozen one wakes up and tries to checkpoint what it was doing
    frozen.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 30
    while "dropped, another writer changed it" not in lab.output(frozen):
        assert time.monotonic() < deadline, lab.output(frozen)
        time.sleep(0.05)
    # I expect its write rejected: the saga completed once, each step checkpointed once
    kill(frozen, signal.SIGTERM)
    kill(rescuer, signal.SIGTERM)
    assert frozen.wait(timeout=30) == 0 and rescuer.wait(timeout=30) == 0
    saga = lab.saga("z")
    assert saga.status == S.COMPLETED
    assert_consistent(lab, saga, STEPS)
    assert lab.count("done", "s1") == 2  # both ran it; only one checkpoint counts


def test_poison_step_that_kills_its_worker_ends_compensated_after_its_retries(lab: Lab) -> None:
    lab.start("crashy", {"p": {"poison": "s1"}})
    for _ in range(10):
        worker = lab.spawn("--burst")
        worker.wait(timeout=60)
        if lab.saga("p").is_terminal:
            break
        time.sleep(LEASE * 1.1)
    saga = lab.saga("p")
    assert (saga.status, saga.reason) == (S.COMPENSATED, sk.Reason.ERROR)
    # the first death, one in quarantine, then max_crashes=2 alone: no loop
    assert lab.count("do", "s1") == 4
    assert lab.count("undone", "s0") == 1
    assert "stopped its worker process 4 times, 2 of them while it ran alone" in (
        saga.error_message or ""
    )
    assert_consistent(lab, saga, STEPS)


def test_durable_retry_timer_survives_a_restart(lab: Lab) -> None:
    lab.start("retrying", {"t": {}})
    first = lab.spawn()
    lab.wait_for("do", "r0")
    # the 3 s backoff is longer than half the lease: the saga is released to a durable timer
    deadline = time.monotonic() + 10
    while lab.saga("t").lease_owner is not None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    kill(first)
    second = lab.spawn()
    saga = lab.wait_until("t", [S.COMPLETED])
    kill(second, signal.SIGTERM)
    tries = [float(n[0]) for n in lab.notes() if n[1] == "do"]
    assert len(tries) == 2
    assert tries[1] - tries[0] >= 2.9  # the restart did not reset or skip the timer
    assert saga.context["r0"] == 2


def test_saga_timeout_that_passed_while_no_worker_ran_compensates(lab: Lab) -> None:
    # the worker is up before the saga's 2 s deadline starts running (a loaded machine
    # may take longer than that to start a process)
    worker = lab.spawn()
    lab.wait_until_working(worker)
    lab.start("deadline", {"d": {"sleep": {"d1": 60}}})
    lab.wait_for("do", "d1")
    kill(worker)
    time.sleep(2.5)  # past the saga's 2 s timeout, with no worker alive
    lab.finish()
    saga = lab.saga("d")
    assert (saga.status, saga.reason) == (S.COMPENSATED, sk.Reason.TIMEOUT)
    assert lab.count("do", "d1") == 1  # not started again after the deadline
    assert lab.count("undone", "d0") == 1
    assert "saga_timed_out" in [e.type for e in lab.events("d")]


def test_sigterm_finishes_the_current_step_releases_and_exits_zero(lab: Lab) -> None:
    lab.start("crashy", {"g": {"sleep": {"s1": 1.5}}})
    worker = lab.spawn()
    lab.wait_for("do", "s1")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    saga = lab.saga("g")
    assert (saga.status, saga.step_index, saga.lease_owner) == (S.RUNNING, 2, None)
    lab.finish()  # no lease to wait out: it was released
    saga = lab.saga("g")
    assert saga.status == S.COMPLETED
    assert [lab.count("do", s) for s in STEPS] == [1, 1, 1, 1]


def test_changed_definition_pauses_instead_of_resuming_blindly(lab: Lab) -> None:
    lab.start("crashy", {"v": {"sleep": {"s1": 5}}})
    worker = lab.spawn()
    lab.wait_for("do", "s1")
    kill(worker)
    time.sleep(LEASE)
    newer = lab.spawn("--burst", env={"CRASH_VARIANT": "b"})
    assert newer.wait(timeout=60) == 0
    saga = lab.saga("v")
    assert (saga.status, saga.reason) == (S.PAUSED, sk.Reason.DEFINITION_CHANGED)
    assert lab.count("do", "s1") == 1
    assert lab.events("v")[-1].type == "saga_paused"
    assert "different definition" in lab.output(newer)
    # When an operator accepts the new code for it, the new definition finishes it
    resume = subprocess.run(
        [sys.executable, "-m", "sagakit", "resume", "v", "--db", lab.url, "--reason", "v2 ok"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert resume.returncode == 0, resume.stderr
    lab.finish(env={"CRASH_VARIANT": "b"})
    saga = lab.saga("v")
    assert saga.status == S.COMPLETED
    assert [e.step for e in lab.events("v") if e.type == "step_completed"] == [
        "s0", "s1", "s2", "s3", "s4",
    ]  # fmt: skip


def test_a_default_runtime_recovers_what_a_killed_app_left_running(lab: Lab) -> None:
    # Given an application that ran a saga with rt.run and was killed in the middle of it
    app = lab.run_app("run", "app-1")
    lab.wait_for("do", "s1")
    kill(app)
    assert lab.saga("app-1").status == S.RUNNING
    # When the same application starts again with a default Runtime and waits for it
    again = lab.run_app("wait", "app-1")
    # I expect the saga resumed once its lease expired, and finished
    assert again.wait(timeout=180) == 0, lab.output(again)
    assert lab.output(again).strip().endswith("COMPLETED")
    saga = lab.saga("app-1")
    assert_consistent(lab, saga, STEPS)
    assert [lab.count("do", s) for s in STEPS] == [1, 2, 1, 1]


def test_sigterm_while_the_app_still_imports_exits_zero(tmp_path: Path) -> None:
    # Given a worker whose application is still importing (no event loop yet)
    lab = Lab(tmp_path)
    try:
        lab.start("crashy", {"early": {}})
        worker = lab._popen(
            "-m", "sagakit", "worker", "--db", lab.url, "--app", "slowapp:sagas", "--poll", "0.05"
        )
        lab.wait_for("importing", "slowapp")
        # When the orchestrator scales it down at once
        worker.send_signal(signal.SIGTERM)
        # I expect a graceful exit 0, nothing claimed and left behind
        assert worker.wait(timeout=60) == 0, lab.output(worker)
        saga = lab.saga("early")
        assert saga.lease_owner is None and saga.status in (S.PENDING, S.RUNNING, S.COMPLETED)
    finally:
        lab.cleanup()


def test_one_poison_saga_among_fifty_costs_its_neighbours_nothing(lab: Lab) -> None:
    # Given 50 ordinary sagas and one whose step kills any worker that runs it
    contexts: dict[str, dict[str, object]] = {
        f"n{i}": {"sleep": {s: 0.05 for s in STEPS}} for i in range(50)
    }
    contexts["poison"] = {"poison": "s2"}
    lab.start("crashy", contexts)
    # When workers run them, each dying whenever the poison step runs
    lab.finish(rounds=60, args=("--concurrency", "16"))
    # I expect the poison saga stopped as its policy says, every other saga completed
    poison = lab.saga("poison")
    assert (poison.status, poison.reason) == (S.COMPENSATED, sk.Reason.ERROR)
    assert lab.count("do", "s2", "poison") == 4
    others = [r for r in lab.sagas() if r.id != "poison"]
    assert len(others) == 50
    assert {r.status for r in others} == {S.COMPLETED}, [
        (r.id, r.status, r.error_message) for r in others if r.status != S.COMPLETED
    ]
    for saga in lab.sagas():
        assert_consistent(lab, saga, STEPS)
