"""The operator's routes in Redis, and how they combine with FAIRBEAT_ROUTES."""

from __future__ import annotations

import redis

from fairbeat.scheduling.routing import route, routing_view
from fairbeat.store.control import ControlState
from fairbeat.store.keys import Keys


def test_the_newest_operator_route_wins_and_unset_restores_the_configured(
    redis_client: redis.Redis,
) -> None:
    control = ControlState(redis_client, Keys("fbtest-routes"))
    configured = [("report.*", "jobs.reports")]
    assert control.route_overrides() == []
    control.set_route_override("report.*", "jobs.big")
    rules = control.set_route_override("report.daily", "jobs.daily")
    assert rules == [("report.daily", "jobs.daily"), ("report.*", "jobs.big")]
    effective = [*control.route_overrides(), *configured]
    assert route("report.daily", effective, "jobs.default") == "jobs.daily"
    assert route("report.weekly", effective, "jobs.default") == "jobs.big"
    # Setting a pattern again moves it first.
    control.set_route_override("report.*", "jobs.big2")
    assert control.route_overrides()[0] == ("report.*", "jobs.big2")
    control.set_route_override("report.*", None)
    control.set_route_override("report.daily", None)
    assert control.route_overrides() == []
    assert route("report.weekly", [*control.route_overrides(), *configured], "d") == "jobs.reports"


def test_the_view_names_each_kinds_rule_and_each_queues_workers() -> None:
    view = routing_view(
        ["email.send", "report.daily", "other"],
        [("report.daily", "jobs.daily")],
        [("email.*", "jobs.email")],
        "jobs.default",
        {"jobs.email": [("w1@h", 4)], "jobs.default": [("w1@h", 4), ("w2@h", 2)]},
    )
    by_kind = {k["kind"]: (k["queue"], k["reason_code"]) for k in view["kinds"]}
    assert by_kind == {
        "email.send": ("jobs.email", "FAIRBEAT_ROUTES"),
        "report.daily": ("jobs.daily", "OPERATOR"),
        "other": ("jobs.default", "DEFAULT_QUEUE"),
    }
    assert view["queues"]["jobs.daily"] == {"kinds": ["report.daily"], "workers": [], "slots": 0}
    assert view["queues"]["jobs.default"]["slots"] == 6
    assert [r["source"] for r in view["rules"]] == ["OPERATOR", "FAIRBEAT_ROUTES"]
