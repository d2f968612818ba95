"""Tests that need root fail, they do not skip: CI runs as root with every component
installed, so a missing privilege or tool means a broken set-up, not an optional test."""

from __future__ import annotations

import os
import shutil

import pytest


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"{what} needs root: run the suite as root (CI does)", pytrace=False)


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.fail(f"`{name}` is missing: run `bash scripts/setup.sh` as root", pytrace=False)


@pytest.fixture
def root_required() -> None:
    require_root("this test")


@pytest.fixture
def nft_required() -> None:
    require_root("`nft -c`")
    require_tool("nft")


needs_root = pytest.mark.usefixtures("root_required")
needs_nft = pytest.mark.usefixtures("nft_required")
