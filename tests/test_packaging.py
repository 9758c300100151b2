"""setup.cfg installs every package of the checkout: voxedge's, and export/ as voxedge_export."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_installed_and_export_is_renamed():
    options = configparser.ConfigParser()
    options.read(ROOT / "setup.cfg")
    listed = set(options["options"]["packages"].split())
    assert options["options"]["package_dir"].split() == ["voxedge_export", "=", "export"]
    on_disk = {init.parent.relative_to(ROOT).as_posix().replace("/", ".")
               for top in ("voxedge", "export") for init in (ROOT / top).rglob("__init__.py")}
    assert on_disk == {name.replace("voxedge_export", "export", 1) for name in listed}
    assert not any(name == "export" or name.startswith("export.") for name in listed)
