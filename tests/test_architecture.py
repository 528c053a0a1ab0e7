"""The layers of docs/ARCHITECTURE.md hold: import-linter's contracts over the package as the wheel lays it out."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

CONTRACTS = Path(__file__).parent / "layers.ini"
LAYERS = {"billcast": "billcast", "renderer": "billcast/renderer", "microsite": "billcast/microsite",
          "jobs": "billcast/jobs", "service": "billcast/service"}
LINT = Path(sys.executable).with_name("lint-imports")


def staged(into: Path) -> Path:
    """The Python files of the repository's package folders, copied as the wheel installs them."""
    for folder, target in LAYERS.items():
        for source in (ROOT / folder).rglob("*.py"):
            dest = into / target / source.relative_to(ROOT / folder)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
    return into


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), str(CONTRACTS), "--no-cache"], cwd=tree, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})


def test_every_contract_is_kept(tmp_path) -> None:
    result = lint(staged(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_back_arrow_breaks_the_layers(tmp_path) -> None:
    tree = staged(tmp_path)
    (tree / "billcast" / "renderer" / "sneaky.py").write_text("from billcast.jobs import load_records\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "billcast.renderer.sneaky -> billcast.jobs" in result.stdout


def test_a_blueprint_importing_the_factory_is_refused(tmp_path) -> None:
    tree = staged(tmp_path)
    events = tree / "billcast" / "service" / "events.py"
    events.write_text(events.read_text(encoding="utf-8") + "\nfrom .app import create_app\n", encoding="utf-8")
    result = lint(tree)
    assert result.returncode != 0 and "billcast.service.events -> billcast.service.app" in result.stdout


def test_every_service_module_but_the_factory_is_held_to_the_blueprint_rule() -> None:
    config = configparser.ConfigParser()
    config.read(CONTRACTS)
    listed = set(config["importlinter:contract:factory"]["source_modules"].split())
    modules = {f"billcast.service.{path.stem}" for path in (ROOT / "service").glob("*.py")
               if path.stem not in ("__init__", "app")}
    assert listed == modules


@pytest.mark.parametrize("package", ["renderer", "microsite", "jobs", "service", "billcast"])
def test_no_module_is_past_500_lines_without_saying_why(package) -> None:
    for path in (ROOT / package).rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > 500:
            head = "\n".join(lines[:30]).lower()
            assert "long because" in head, f"{path.relative_to(ROOT)} has {len(lines)} lines and does not say why"
