"""``baselines`` is an optional package of networks, and a foreign ``baselines`` must not stand in for it.

Each case runs in a fresh interpreter outside the repository (so the checkout is not on sys.path by
way of the working directory): once with the package hidden by a ``sys.meta_path`` blocker, once with
a stand-in for OpenAI's PyPI ``baselines`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BAD_EVALUATE = ["evaluate", "--gt", "/nonexistent/gt", "--pred", "/nonexistent/pred", "--out", "x.csv",
                "--dataset", "kits19", "--network", "N", "--fold", "0", "--region-preset", "kits19"]


def _run(script: str, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDNEXT_NETWORK_PLUGINS")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_and_registry_work_without_baselines(tmp_path: Path) -> None:
    script = f"""
        import sys

        class HideBaselines:
            def find_spec(self, name, path=None, target=None):
                if name == "baselines" or name.startswith("baselines."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, HideBaselines())
        from mednext.cli import entry
        from mednext.networks import list_networks

        names = list_networks()
        assert "MedNeXt-B_k3" in names and "nnUNet" in names, names
        assert not list_networks(["baseline"]), names
        print("exit", entry({BAD_EVALUATE!r}))
        assert "baselines" not in sys.modules
    """
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("exit 1")
    assert result.stderr.strip().splitlines()[-1] == "mednext-repro: error: /nonexistent/gt: folder not found"


def test_a_foreign_baselines_package_fails_loudly(tmp_path: Path) -> None:
    foreign = tmp_path / "site" / "baselines"
    foreign.mkdir(parents=True)
    (foreign / "__init__.py").write_text('"""Stand-in for OpenAI\'s PyPI package of the same name."""\n')
    (foreign / "common").mkdir()
    (foreign / "common" / "__init__.py").write_text("")
    script = f"""
        import baselines

        assert baselines.__file__ == {str(foreign / "__init__.py")!r}, baselines.__file__  # the stand-in wins
        from mednext.networks import list_networks

        list_networks()
    """
    result = _run(script, tmp_path, pythonpath=tmp_path / "site")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and str(foreign / "__init__.py") in last
    assert "package 'baselines' is not this project's" in last and "same name installed" in last

    cli = _run(f"from mednext.cli import entry; entry({BAD_EVALUATE!r})", tmp_path, pythonpath=tmp_path / "site")
    assert cli.returncode != 0
    last = cli.stderr.strip().splitlines()[-1]
    assert str(foreign / "__init__.py") in last and "it has no PatchSizeError" in last
