"""ODCS v3 data contracts, shipped as package data.

Why a package: the contracts are the single source that pandera models, expectation suites
and SQL grants are derived from, so every stage must read the same files whether the hub
runs from a checkout, an installed wheel or a container image. ``importlib.resources``
finds them in all three.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from open_data_contract_standard.model import OpenDataContractStandard

__all__ = ["available", "load", "text"]


def available() -> list[str]:
    """Names of every contract shipped with the hub (file names without ``.yaml``)."""
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in files(__name__).iterdir()
        if entry.name.endswith(".yaml")
    )


def text(name: str) -> str:
    """The YAML text of one contract, e.g. ``text("ps_population")``."""
    resource = files(__name__) / f"{name}.yaml"
    if not resource.is_file():
        raise FileNotFoundError(
            f"no contract {name!r} in the contracts package; available: {', '.join(available())}"
        )
    return resource.read_text(encoding="utf-8")


@cache
def load(name: str) -> OpenDataContractStandard:
    """Parse one contract with the ODCS model (cached: contracts do not change at run time)."""
    return OpenDataContractStandard.from_string(text(name))
