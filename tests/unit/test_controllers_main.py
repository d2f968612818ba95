"""`kubelite scheduler` / `controller-manager` dispatch, without starting anything."""

from __future__ import annotations

import pytest

from controllers import main as controllers_main


def test_unknown_or_missing_sub_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert controllers_main.main([]) == 2
    assert controllers_main.main(["bogus"]) == 2
    assert "usage" in capsys.readouterr().err


def test_a_missing_controller_manager_says_so(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(controllers_main, "MANAGER_MODULE", "controllers.no_such_manager")
    assert controllers_main.main(["controller-manager", "--kubeconfig", "x"]) == 2
    assert "not available in this build" in capsys.readouterr().err


def test_the_scheduler_refuses_inconsistent_election_timings(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = controllers_main.main(["scheduler", "--kubeconfig", "x",
                                  "--leader-elect-lease-duration", "10s",
                                  "--leader-elect-renew-deadline", "10s"])
    assert code == 2
    assert "--leader-elect-lease-duration must exceed" in capsys.readouterr().err
