"""obliviate's process-wide OpenMP settings: set at import, never over what the user chose."""

from __future__ import annotations

import os
import subprocess
import sys

from obliviate.runtime import apply_thread_defaults, thread_defaults


def test_passive_wait_only_when_asked_and_never_over_the_users_choice():
    assert thread_defaults({"OBLIVIATE_THREADS": "shared"}) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert thread_defaults({"OBLIVIATE_THREADS": "shared", "OMP_WAIT_POLICY": "ACTIVE"}) == {}
    assert thread_defaults({"OBLIVIATE_THREADS": "torch"}) == {}
    assert thread_defaults({}) == {}


def test_nothing_is_set_once_torch_is_loaded():
    import torch  # noqa: F401  (the test process has torch loaded: OpenMP has read its settings)

    env: dict[str, str] = {}
    assert apply_thread_defaults(env) == {} and env == {}


def _policy_after_import(extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OBLIVIATE_THREADS")}
    code = "import os, obliviate, torch; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, **extra},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_import_sets_the_policy_before_torch_and_keeps_the_users():
    assert _policy_after_import({"OBLIVIATE_THREADS": "shared"}) == "PASSIVE"
    assert _policy_after_import({"OBLIVIATE_THREADS": "shared", "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
    assert _policy_after_import({}) == "unset"
