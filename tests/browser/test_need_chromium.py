"""`make test` on a machine without Chromium (tests/browser/need-chromium): with root and apt it
installs Debian's package, otherwise it stops with one line saying what to run. Run with stand-in
`id` and `apt-get` programs on a PATH that has no Chromium, so nothing is installed here."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("need-chromium")


def _program(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _run(bin_dir: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPT)],
        env={"PATH": str(bin_dir), **environ},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_without_root_it_says_what_to_run_in_one_line(tmp_path: Path) -> None:
    _program(tmp_path, "id", "echo 1000\n")
    _program(tmp_path, "apt-get", f"echo called >> {tmp_path}/apt.log\n")
    done = _run(tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "make: the browser tests need Chromium: run 'sudo apt-get install chromium' (Debian), "
        "then 'make test' again\n"
    )
    assert not (tmp_path / "apt.log").exists(), "apt-get is not tried without root"


def test_as_root_with_apt_it_installs_debians_chromium(tmp_path: Path) -> None:
    _program(tmp_path, "id", "echo 0\n")
    # apt-get's stand-in records its calls and, on install, puts a `chromium` on the PATH.
    _program(
        tmp_path,
        "apt-get",
        f'echo "$*" >> {tmp_path}/apt.log\n'
        f'case "$*" in *install*) printf "#!/bin/sh\\n" > {tmp_path}/chromium; '
        f"/bin/chmod 755 {tmp_path}/chromium;; esac\n",
    )
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls == ["update -qq", "install -y -qq --no-install-recommends chromium"]
    assert "installing Debian's chromium package" in done.stderr
    assert _run(tmp_path).stderr == "", "found the second time: nothing to do, nothing said"


def test_a_failed_install_stops_with_what_to_run(tmp_path: Path) -> None:
    _program(tmp_path, "id", "echo 0\n")
    _program(tmp_path, "apt-get", "exit 100\n")
    done = _run(tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(
        "make: the browser tests need Chromium: run 'sudo apt-get install chromium'"
    )


def test_a_chromium_named_by_kollie_chromium_that_is_not_there(tmp_path: Path) -> None:
    _program(tmp_path, "id", "echo 0\n")
    done = _run(tmp_path, KOLLIE_CHROMIUM=str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert done.stderr == (
        f"make: KOLLIE_CHROMIUM={tmp_path}/nowhere is not a program; point it at a Chromium "
        "binary or unset it\n"
    )
