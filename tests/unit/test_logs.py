import json
import logging

from fairbeat.tasks.logs import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("fairbeat.dispatch", logging.INFO, __file__, 1, "tick %s", ("x",), None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_a_record_is_one_json_line_with_its_action_and_fields() -> None:
    line = JsonFormatter().format(record(action="dispatch.tick", claimed=3, unclaimed={"A": 1}))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["action"] == "dispatch.tick" and entry["message"] == "tick x"
    assert entry["claimed"] == 3 and entry["unclaimed"] == {"A": 1}
    assert entry["level"] == "INFO" and entry["logger"] == "fairbeat.dispatch"


def test_a_record_without_action_still_has_the_key() -> None:
    assert json.loads(JsonFormatter().format(record()))["action"] is None


def test_exceptions_are_kept() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert "RuntimeError: boom" in json.loads(JsonFormatter().format(rec))["exc"]
