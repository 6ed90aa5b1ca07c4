"""obliviate's process-wide OpenMP settings: set at import, never over what the user chose."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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


def _fresh_share(monkeypatch, tmp_path):
    """A clean registry in a temporary cache, sharing on (the test session turns it off)."""
    import obliviate.runtime as rt

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    monkeypatch.delenv("OBLIVIATE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    share = rt._Share()
    monkeypatch.setattr(rt, "_SHARE", share)
    return rt, share


def test_threads_are_shared_with_other_working_processes_and_given_back(monkeypatch, tmp_path):
    import torch

    rt, share = _fresh_share(monkeypatch, tmp_path)
    start = torch.get_num_threads()
    try:
        assert rt.share_threads(interval=0) == start  # alone: all of them
        me = tmp_path / "processes" / str(os.getpid())
        assert me.exists()
        share.threads = 4  # as if this process had started with 4 threads
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            (tmp_path / "processes" / str(other.pid)).write_text(rt._start_time(other.pid))
            assert rt.share_threads(interval=0) == 2 and torch.get_num_threads() == 2
            assert rt.share_threads(interval=60) == 2  # within the interval: no new look
            # an idle process (its file not touched for IDLE_S seconds) does not count
            old = time.time() - rt.IDLE_S - 1
            os.utime(tmp_path / "processes" / str(other.pid), (old, old))
            assert rt.share_threads(interval=0) == 4
            os.utime(tmp_path / "processes" / str(other.pid))
            assert rt.share_threads(interval=0) == 2
        finally:
            other.kill()
            other.wait()
        # a dead process's file is removed and its share given back
        assert rt.share_threads(interval=0) == 4
        assert not (tmp_path / "processes" / str(other.pid)).exists()
        # a pid reused by another process (another start time) is not the registered one
        (tmp_path / "processes" / str(os.getppid())).write_text("1")
        assert rt.share_threads(interval=0) == 4
        assert not (tmp_path / "processes" / str(os.getppid())).exists()
        share.unregister()
        assert not me.exists()
    finally:
        torch.set_num_threads(start)


def test_sharing_is_off_when_asked_or_when_the_threads_are_set(monkeypatch, tmp_path):
    rt, share = _fresh_share(monkeypatch, tmp_path)
    monkeypatch.setenv("OBLIVIATE_THREADS", "torch")
    assert rt.share_threads(interval=0) is None
    monkeypatch.delenv("OBLIVIATE_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert rt.share_threads(interval=0) is None
    assert not (tmp_path / "processes").exists()


def test_a_read_only_cache_leaves_the_threads_alone(monkeypatch, tmp_path):
    import torch

    rt, share = _fresh_share(monkeypatch, tmp_path)
    (tmp_path / "processes").write_text("not a folder")
    start = torch.get_num_threads()
    assert rt.share_threads(interval=0) is None and torch.get_num_threads() == start
