"""Saga definitions are validated when declared, with errors naming saga, step and fix."""

from __future__ import annotations

from typing import Any

import pytest

import sagakit as sk


async def ok(ctx: sk.StepContext) -> dict[str, int]:
    return {}


def test_decorator_and_list_forms_describe_the_same_saga() -> None:
    # Given the same saga declared both ways
    decorated = sk.Saga("s")

    @decorated.step(timeout=5)
    async def first(ctx: sk.StepContext) -> None:
        return None

    @first.compensation
    async def undo_first(ctx: sk.StepContext) -> None:
        return None

    listed = sk.Saga("s", steps=[sk.Step("first", ok, compensate=undo_first, timeout=5)])
    # I expect equal shapes, hence equal definition hashes
    assert [s.name for s in decorated.steps] == [s.name for s in listed.steps] == ["first"]
    assert decorated.definition_hash == listed.definition_hash
    assert decorated.steps[0].compensate is undo_first


def test_bare_decorator_uses_function_name() -> None:
    saga = sk.Saga("s")

    @saga.step
    async def reserve(ctx: sk.StepContext) -> None:
        return None

    assert saga.steps[0].name == "reserve"
    assert saga.get_step("reserve") is reserve


def test_duplicate_step_name_is_refused_naming_saga_and_step() -> None:
    saga = sk.Saga("checkout")
    saga.add(sk.Step("pay", ok))
    with pytest.raises(sk.DefinitionError, match=r"checkout.*'pay'.*unique"):
        saga.add(sk.Step("pay", ok))


def test_non_callable_action_is_refused() -> None:
    with pytest.raises(sk.DefinitionError, match=r"step 'x'.*must be a function"):
        sk.Saga("s", steps=[sk.Step("x", "not a function")])  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 0, "3", True])
def test_bad_timeouts_are_refused(bad: object) -> None:
    with pytest.raises(sk.DefinitionError, match="timeout must be a positive number"):
        sk.Saga("s", steps=[sk.Step("x", ok, timeout=bad)])  # type: ignore[arg-type]
    with pytest.raises(sk.DefinitionError, match="timeout"):
        sk.Saga("s", timeout=bad)  # type: ignore[arg-type]


def test_compensation_for_unknown_step_is_refused_listing_known_steps() -> None:
    saga = sk.Saga("s", steps=[sk.Step("a", ok)])
    with pytest.raises(sk.DefinitionError, match=r"no step 'b' \(steps: a\)"):
        saga.compensation_for("b")


def test_compensation_for_known_step_attaches_it() -> None:
    saga = sk.Saga("s", steps=[sk.Step("a", ok)])

    @saga.compensation_for("a")
    async def undo(ctx: sk.StepContext) -> None:
        return None

    assert saga.steps[0].compensate is undo


def test_second_compensation_on_one_step_is_refused() -> None:
    saga = sk.Saga("s", steps=[sk.Step("a", ok, compensate=ok)])
    with pytest.raises(sk.DefinitionError, match="already has the compensation"):
        saga.steps[0].compensation(ok)


def test_generators_cannot_be_steps() -> None:
    async def agen(ctx: sk.StepContext):  # type: ignore[no-untyped-def]
        yield 1

    def gen(ctx: sk.StepContext):  # type: ignore[no-untyped-def]
        yield 1

    for fn in (agen, gen):
        with pytest.raises(sk.DefinitionError, match="generator; the engine cannot run it"):
            sk.Step("g", fn)
    with pytest.raises(sk.DefinitionError, match="generator"):
        sk.Step("g", ok, compensate=agen)


def test_sync_and_async_functions_may_mix_in_one_saga() -> None:
    def sync_step(ctx: sk.StepContext) -> dict[str, int]:
        return {}

    saga = sk.Saga("mixed", steps=[sk.Step("a", ok, compensate=sync_step), sk.Step("b", sync_step)])
    assert len(saga.steps) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"initial": -1}, "initial"),
        ({"backoff": 0.5}, "backoff"),
        ({"non_retryable": (int,)}, "non_retryable"),
    ],
)
def test_bad_retry_policies_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(sk.DefinitionError, match=f"Retry.{field}"):
        sk.Retry(**kwargs)  # type: ignore[arg-type]


def test_retry_delay_grows_exponentially_within_jitter_and_cap() -> None:
    policy = sk.Retry(initial=0.1, backoff=2.0, jitter=0.5, max_delay=0.5)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)]:
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(base <= d <= base * 1.5 for d in delays), (attempt, delays)
    assert len({round(policy.delay(2), 6) for _ in range(20)}) > 1  # jittered


def test_empty_saga_cannot_be_registered() -> None:
    with pytest.raises(sk.DefinitionError, match="has no steps"):
        sk.Runtime("memory://", sagas=[sk.Saga("empty")])


def test_two_sagas_with_one_name_are_refused() -> None:
    a = sk.Saga("same", steps=[sk.Step("a", ok)])
    b = sk.Saga("same", steps=[sk.Step("b", ok)])
    with pytest.raises(sk.DefinitionError, match="two sagas are named 'same'"):
        sk.Runtime("memory://", sagas=[a, b])


def test_definition_hash_changes_with_the_step_list() -> None:
    a = sk.Saga("s", steps=[sk.Step("a", ok), sk.Step("b", ok)])
    b = sk.Saga("s", steps=[sk.Step("b", ok), sk.Step("a", ok)])
    c = sk.Saga("s", steps=[sk.Step("a", ok), sk.Step("b", ok, compensate=ok)])
    assert len({a.definition_hash, b.definition_hash, c.definition_hash}) == 3


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: sk.Step("a", _noop, max_retries=3), r"no argument 'max_retries'; write retry="),
        (
            lambda: sk.Step("a", _noop, compensation=_noop),
            r"no argument 'compensation'; write compensate=",
        ),
        (lambda: sk.Saga("s").step(retries=2), r"@saga.step has no argument 'retries'"),
        (
            lambda: sk.Step("a", _noop, colour="red"),
            r"no argument 'colour'; its arguments are: name",
        ),
    ],
)
def test_arguments_from_other_orchestrators_say_what_to_write(make: Any, message: str) -> None:
    with pytest.raises(sk.DefinitionError, match=message):
        make()


def _noop(ctx: sk.StepContext) -> None:
    return None
