"""Every registered method forgets on the tiny model that learned the fictional facts.

Parametrised over the registry, so a newly registered method is covered automatically: it must
raise the mean forget answer NLL by at least 1 nat and, with a retain term, raise the retain NLL
by less than half as much (see ``method_behaviour.check_forgets``).
"""

from __future__ import annotations

from typing import Any

import pytest
from method_behaviour import check_forgets

from obliviate.methods.base import METHODS


@pytest.mark.parametrize("name", METHODS.names())
def test_method_forgets_and_keeps_retain(name: str, tiny_trained: Any) -> None:
    check_forgets(name, tiny_trained.state, tiny_trained.tokenizer, tiny_trained.task)
