"""Both Gemini engines (GEMINI_API) for the scenarios that concern the model.

The shared ``core`` fixture (tests/conftest.py) runs on the ``engine_api`` fixture's engine:
generateContent unless a module imports :func:`both_engines`, which overrides ``engine_api`` there
so every test of the module that draws on the core runs once per engine:

    from tests.auxil.engines import both_engines  # noqa: F401  (engine_api: each engine)
"""

from __future__ import annotations

import pytest

from bot.gemini.capabilities import GENERATE_CONTENT, INTERACTIONS

ENGINES = (GENERATE_CONTENT, INTERACTIONS)


@pytest.fixture(name="engine_api", params=ENGINES)
def both_engines(request: pytest.FixtureRequest) -> str:
    """The GEMINI_API of this run of the test: each engine in turn."""
    return str(request.param)


def interactions(engine_api: str) -> bool:
    """Whether the test runs on the Interactions API (server-side history)."""
    return engine_api == INTERACTIONS
