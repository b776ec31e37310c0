"""The ``[trust]`` policy on its own: who may run own functions, and what."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from openhcs_nb import Pipeline, Step, function, nuclei_count_pipeline
from openhcs_nb.custom import ShippedSource
from openhcs_nb.execution.sandbox import Sandbox
from openhcs_nb.functions import builtin_catalogue
from openhcs_nb.server.config import TrustSection
from openhcs_nb.server.trust import TrustPolicy, UntrustedCodeError


@function
def uses_os(stack):
    import os

    return stack + len(os.sep)


@function
def plain(stack):
    return np.clip(stack, 0, None)


def _code(fn) -> str:
    return Pipeline(name="p", steps=[Step(name="s", func=fn)]).to_code()


def test_when_user_is_not_named_then_own_functions_are_refused_with_the_policy():
    policy = TrustPolicy(TrustSection(users=("alice",)))
    with pytest.raises(UntrustedCodeError, match=r"'bob'.*\[trust\]") as info:
        policy.load(_code(plain), builtin_catalogue(), "bob")
    assert info.value.code == "untrusted_code"
    assert "plain" in str(info.value)


def test_when_code_has_no_own_functions_then_anyone_may_run_it():
    policy = TrustPolicy(TrustSection())
    code = nuclei_count_pipeline().to_code()
    assert policy.load(code, builtin_catalogue(), "bob") == nuclei_count_pipeline()


def test_when_a_module_is_not_allowed_then_the_refusal_names_it_and_its_line():
    policy = TrustPolicy(TrustSection(users=("alice",), modules=("numpy",)))
    with pytest.raises(UntrustedCodeError, match="imports 'os' \\(line"):
        policy.load(_code(uses_os), builtin_catalogue(), "alice")


def test_when_a_group_is_trusted_then_its_members_are():
    policy = TrustPolicy(TrustSection(groups=("imaging",)))
    assert policy.trusts("carol", ["imaging", "other"])
    assert not policy.trusts("carol", ["other"])


def test_when_bwrap_is_missing_then_own_functions_are_refused_not_run_bare():
    policy = TrustPolicy(TrustSection(users=("alice",)), bwrap="no-such-bwrap")
    with pytest.raises(UntrustedCodeError, match=r"cannot sandbox.*no-such-bwrap"):
        policy.load(_code(plain), builtin_catalogue(), "alice")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bwrap")
def test_when_trusted_then_functions_are_armed_with_the_configured_sandbox():
    policy = TrustPolicy(TrustSection(users=("alice",), memory_mb=512, cpu_s=5))
    pipeline = policy.load(_code(plain), builtin_catalogue(), "alice")
    impl = pipeline.steps[0].functions()[0].impl
    assert isinstance(impl, ShippedSource) and isinstance(impl.runner, Sandbox)
    assert (impl.runner.limits.memory_mb, impl.runner.limits.cpu_s) == (512, 5)
    out = impl(np.array([[[-1.0, 2.0]]]))  # runs in bwrap, here in the test
    assert out.tolist() == [[[0.0, 2.0]]]
