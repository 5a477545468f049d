from server.wes import states


def test_terminal_states_have_no_way_out():
    for state in states.TERMINAL:
        for target in states.ALL:
            assert not states.allowed(state, target)


def test_queued_can_only_start_be_canceled_or_fail():
    assert states.sources(states.INITIALIZING) == (states.QUEUED,)
    assert states.allowed(states.QUEUED, states.CANCELED)
    assert not states.allowed(states.QUEUED, states.RUNNING)
    assert not states.allowed(states.QUEUED, states.COMPLETE)


def test_canceling_only_ends_canceled():
    assert states.TRANSITIONS[states.CANCELING] == frozenset({states.CANCELED})
