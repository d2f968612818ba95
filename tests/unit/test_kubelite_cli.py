"""The `kubelite` dispatcher: help, unknown and not-yet-built sub-commands, dispatch."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import kubelite_cli


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert kubelite_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in (
        "store",
        "apiserver",
        "kubeconfig",
        "scheduler",
        "controller-manager",
        "agent",
        "up",
        "down",
        "status",
        "join",
        "drill",
        "lab",
    ):
        assert f"  {name} " in out


def test_no_arguments_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert kubelite_cli.main([]) == 2
    assert "usage: kubelite" in capsys.readouterr().err


def test_unknown_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert kubelite_cli.main(["frobnicate"]) == 2
    assert "unknown sub-command 'frobnicate'" in capsys.readouterr().err


def test_missing_module_is_not_available_yet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        kubelite_cli.SUBCOMMANDS,
        "ghost",
        kubelite_cli.Subcommand("kubelite_no_such_package.main", "not built"),
    )
    assert kubelite_cli.main(["ghost"]) == 2
    assert "not available yet" in capsys.readouterr().err


def test_missing_dependency_inside_a_module_propagates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A module that exists but cannot import what it needs is a bug, not "not available".
    (tmp_path / "kubelite_broken_main.py").write_text("import kubelite_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        kubelite_cli.SUBCOMMANDS, "broken", kubelite_cli.Subcommand("kubelite_broken_main", "x")
    )
    with pytest.raises(ModuleNotFoundError, match="kubelite_no_such_dependency"):
        kubelite_cli.main(["broken"])
    monkeypatch.delitem(sys.modules, "kubelite_broken_main", raising=False)


@pytest.mark.parametrize(
    ("pass_name", "expected"),
    [(False, ["--name", "m1"]), (True, ["fake", "--name", "m1"])],
)
def test_dispatch_passes_arguments(
    monkeypatch: pytest.MonkeyPatch, pass_name: bool, expected: list[str]
) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("kubelite_fake_main")
    fake.main = lambda argv: seen.append(argv) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kubelite_fake_main", fake)
    monkeypatch.setitem(
        kubelite_cli.SUBCOMMANDS,
        "fake",
        kubelite_cli.Subcommand("kubelite_fake_main", "x", pass_name=pass_name),
    )
    assert kubelite_cli.main(["fake", "--name", "m1"]) == 7
    assert seen == [expected]


def test_shared_modules_get_the_subcommand_name() -> None:
    by_module: dict[str, list[kubelite_cli.Subcommand]] = {}
    for sub in kubelite_cli.SUBCOMMANDS.values():
        by_module.setdefault(sub.module, []).append(sub)
    for module, subs in by_module.items():
        assert all(s.pass_name == (len(subs) > 1) for s in subs), module
