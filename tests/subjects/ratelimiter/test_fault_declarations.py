"""A rate limiter fault names its parameters' model once, as its type parameter: that is its
``params_model``, and a class that says two different things is refused when declared."""

from __future__ import annotations

import pytest

from subjects.contract import NoArgs
from subjects.ratelimiter.faults import FAULT_TYPES, MisconfigParams
from subjects.ratelimiter.faults.keys import CounterDrift, DriftParams, KeyFault, LimitMisconfig
from subjects.ratelimiter.faults.nodes import NodeKill


def test_the_type_parameter_is_the_params_model() -> None:
    assert CounterDrift.params_model is DriftParams
    assert LimitMisconfig.params_model is MisconfigParams
    assert NodeKill.params_model is NoArgs
    assert all(f.params_model is not None for f in FAULT_TYPES)


def test_a_fault_that_names_two_params_models_is_refused() -> None:
    with pytest.raises(TypeError, match=r"names DriftParams as its parameters .* params_model = MisconfigParams"):
        class Confused(KeyFault[DriftParams]):  # declaring it is the act under test
            kind = "confused"
            params_model = MisconfigParams
