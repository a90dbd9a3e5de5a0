import pytest

from driftloop.monitor.events import InferenceEvent
from driftloop.monitor.pairing import EventPairer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(event_id: str, kind: str) -> InferenceEvent:
    return InferenceEvent(event_id=event_id, kind=kind, model="m", body={"kind": kind})


@pytest.mark.parametrize("first", ["request", "response"])
def test_pairs_in_either_order(first):
    second = "response" if first == "request" else "request"
    pairer = EventPairer(ttl_s=10)
    assert pairer.add(event("a", first)).pair is None
    pair = pairer.add(event("a", second)).pair
    assert pair is not None
    assert (pair.request, pair.response) == ({"kind": "request"}, {"kind": "response"})
    assert len(pairer) == 0


def test_duplicate_half_is_reported_and_the_first_kept():
    pairer = EventPairer(ttl_s=10)
    pairer.add(event("a", "request"))
    assert pairer.add(event("a", "request")).duplicate
    assert pairer.add(event("a", "response")).pair is not None


def test_unpaired_halves_expire_after_the_ttl():
    clock = Clock()
    pairer = EventPairer(ttl_s=5, clock=clock)
    pairer.add(event("old", "request"))
    clock.now += 3
    pairer.add(event("young", "response"))
    clock.now += 3  # "old" is 6 s old, "young" 3 s
    assert pairer.expire() == 1
    assert len(pairer) == 1
    # the response of the expired request can no longer pair
    outcome = pairer.add(event("old", "response"))
    assert outcome.pair is None
    assert pairer.add(event("young", "request")).pair is not None


def test_expired_halves_are_counted_when_the_next_event_arrives():
    clock = Clock()
    pairer = EventPairer(ttl_s=1, clock=clock)
    pairer.add(event("a", "request"))
    pairer.add(event("b", "request"))
    clock.now += 2
    assert pairer.add(event("c", "request")).dropped == 2


def test_pending_map_is_bounded_and_evicts_the_oldest():
    pairer = EventPairer(ttl_s=100, max_pending=3)
    dropped = sum(pairer.add(event(str(i), "request")).dropped for i in range(5))
    assert dropped == 2
    assert len(pairer) == 3
    assert pairer.add(event("0", "response")).pair is None  # evicted
    assert pairer.add(event("4", "response")).pair is not None


def test_rejects_nonsense_limits():
    with pytest.raises(ValueError):
        EventPairer(ttl_s=0)
