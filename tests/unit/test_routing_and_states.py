from hypothesis import given
from hypothesis import strategies as st

from fairbeat.scheduling.jobstate import IN_FLIGHT, TERMINAL, TRANSITIONS, JobStatus, can_move
from fairbeat.scheduling.routing import route

RULES = [("email.*", "jobs.email"), ("report.daily", "jobs.reports"), ("*", "jobs.catchall")]


def test_first_matching_pattern_wins() -> None:
    assert route("email.welcome", RULES, "jobs.default") == "jobs.email"
    assert route("report.daily", RULES, "jobs.default") == "jobs.reports"
    assert route("report.weekly", RULES, "jobs.default") == "jobs.catchall"


def test_no_rule_means_the_default_queue() -> None:
    assert route("anything", [], "jobs.default") == "jobs.default"
    assert route("Email.welcome", RULES[:1], "jobs.default") == "jobs.default"  # case matters


@given(st.text(min_size=1, max_size=50))
def test_every_kind_gets_exactly_one_queue(kind: str) -> None:
    assert route(kind, RULES, "jobs.default") in {"jobs.email", "jobs.reports", "jobs.catchall"}


def test_succeeded_and_cancelled_are_final() -> None:
    for status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED):
        assert TRANSITIONS[status] == frozenset()


def test_only_a_claim_leads_to_running() -> None:
    sources = {s for s in JobStatus if can_move(s, JobStatus.RUNNING)}
    assert sources == {JobStatus.CLAIMED}


def test_in_flight_and_terminal_do_not_overlap() -> None:
    assert not IN_FLIGHT & TERMINAL
    assert set(TRANSITIONS) == set(JobStatus)


def test_a_waiting_job_is_never_claimed_and_only_released_or_ended() -> None:
    assert not can_move(JobStatus.WAITING, JobStatus.CLAIMED)
    assert TRANSITIONS[JobStatus.WAITING] == {
        JobStatus.PENDING,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }
    assert {s for s in JobStatus if can_move(s, JobStatus.WAITING)} == set()
