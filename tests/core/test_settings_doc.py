"""``docs/settings.md`` is generated from ``core.settings`` and must be current; a TOML config file is read."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_settings_doc", ROOT / "scripts" / "gen_settings_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_settings_doc"] = module
    spec.loader.exec_module(module)
    return module


def test_the_settings_reference_is_current_and_lists_every_setting() -> None:
    text = _generator().render()
    assert (ROOT / "docs" / "settings.md").read_text(encoding="utf-8") == text, "run python scripts/gen_settings_doc.py"
    for section, field in Settings.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        keys = [f"{section}.{k}" for k in sub] if sub else [section]
        for key in keys:
            env = "FLYWHEEL_" + key.upper().replace(".", "__")
            assert f"| `{key}` | `{env}` |" in text


@pytest.mark.parametrize("where", ["cwd", "data_dir", "explicit"])
def test_a_toml_config_file_is_read_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    for name in [k for k in __import__("os").environ if k.startswith("FLYWHEEL_")]:
        monkeypatch.delenv(name)
    data_dir = tmp_path / "kb-data"
    data_dir.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    config = {"cwd": work, "data_dir": data_dir, "explicit": tmp_path}[where] / "flywheel.toml"
    config.write_text('[training]\nmin_pairs = 64\n\n[eval]\nmin_slice_cases = 7\n', encoding="utf-8")
    monkeypatch.setenv("FLYWHEEL_DATA_DIR", str(data_dir))
    if where == "explicit":
        monkeypatch.setenv("FLYWHEEL_CONFIG", str(config))
    monkeypatch.setenv("FLYWHEEL_EVAL__MIN_SLICE_CASES", "9")
    settings = Settings()
    assert settings.training.min_pairs == 64  # from the file
    assert settings.eval.min_slice_cases == 9  # the environment wins over the file
    assert Settings(training={"min_pairs": 5}).training.min_pairs == 5  # arguments win over both


def test_when_flywheel_config_names_no_file_then_invalid_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from core.errors import InvalidInputError

    monkeypatch.setenv("FLYWHEEL_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(InvalidInputError, match="FLYWHEEL_CONFIG"):
        Settings()


def test_the_readme_opens_with_the_two_commands_and_every_doc_link_resolves() -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in block] == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
