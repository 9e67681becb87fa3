"""Store-test fixtures beyond the shared ones: a Runtime with chosen settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fairbeat.tasks.runtime import Runtime
from fairbeat.tasks.settings import Settings

RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def make_runtime(database_url: str) -> Iterator[RuntimeFactory]:
    made: list[Runtime] = []

    def build(**values: Any) -> Runtime:
        made.append(Runtime(Settings(database_url=database_url, **values)))
        return made[-1]

    yield build
    for rt in made:
        rt.engine.dispose()


@pytest.fixture
def runtime(make_runtime: RuntimeFactory) -> Runtime:
    return make_runtime()
