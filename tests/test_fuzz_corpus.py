"""The fuzz targets' invariants (fuzz/fuzz_*.py) on their seed corpus and on the inputs the
fuzzer found, in the normal suite and without atheris: a change that breaks one shows here
before the next fuzzing run."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ))

TARGETS = ("engine", "handshake", "deflate", "url", "proxy")
INPUTS = [
    pytest.param(target, path, id=f"{target}/{path.name[:12]}")
    for target in TARGETS
    for path in sorted((FUZZ / "corpus" / target).iterdir())
]


@pytest.mark.parametrize(("target", "path"), INPUTS)
def test_fuzz_target_holds_on_its_corpus(target: str, path: Path) -> None:
    """The target's invariants hold on this input (both builds, where the target runs
    both)."""
    module = importlib.import_module(f"fuzz_{target}")
    module.check(path.read_bytes())


def test_every_target_has_a_corpus() -> None:
    """Each target has its seed corpus, and each fuzz_*.py is a listed target."""
    found = sorted(path.stem.removeprefix("fuzz_") for path in FUZZ.glob("fuzz_*.py"))
    assert found == sorted(TARGETS)
    for target in TARGETS:
        assert list((FUZZ / "corpus" / target).iterdir()), target
