"""The command line under signals, full disks, bad options and untrusted files (issue 17).

Signals go to a real ``pyscvibridge`` process while it trains (or writes); a full disk is a 1 MB
tmpfs mounted by the test (it needs root; where mounting is not possible those tests are skipped
and the disk-full path is covered by a simulated ENOSPC, said in that test).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import pyscvibridge
from pyscvibridge import _atomic, _signals
from pyscvibridge.cli import cli

CELLBENCH = Path(pyscvibridge.__file__).parent / "datasets" / "cellbench.h5ad"


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("pyscvibridge")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pyscvibridge.cli"]


def _env() -> dict:
    env = dict(os.environ)
    root = str(Path(pyscvibridge.__file__).parents[1])  # this copy of the package, in the children too
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


class _Run:
    """A CLI process whose stderr is read line by line as it comes."""

    def __init__(self, args: list[str], cwd: Path):
        self.proc = subprocess.Popen(
            [*_command(), *args],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.out = ""
        # stderr is read line by line here, stdout whole in another thread; communicate() would
        # read stderr too, racing this reader for the last lines.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def _read_out(self) -> None:
        self.out = self.proc.stdout.read()

    def wait_for(self, text: str, timeout: float = 240) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.proc.kill()
        pytest.fail(f"never saw {text!r}; stderr: {''.join(self.lines)[-3000:]}")

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        self._out_reader.join(timeout=10)
        return self.proc.returncode, "".join(self.lines)


# ---------------------------------------------------------------- signals


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_training(tmp_path, signum, code):
    """SIGTERM/Ctrl-C while scVI trains: exit 143/130, one line on stderr, no file, no temporary."""
    out = tmp_path / "out.h5ad"
    run = _Run(
        ["integrate", str(CELLBENCH), "-o", str(out), "--batch-key", "batch", "--max-epochs", "400"], tmp_path
    )
    run.wait_for("scVI: epoch")  # a progress line: training runs
    run.proc.send_signal(signum)
    rc, err = run.finish()
    assert rc == code, err
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert errors == [
        f"Error: interrupted by {signal.Signals(signum).name}"
        + (" (Ctrl-C)" if code == 130 else "")
        + "; files being written were removed."
    ]
    assert "Traceback" not in err
    # stdout still carries scvi-tools' own print ("Exception raised during training. ...").
    assert not out.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_sigint_during_the_h5ad_write(tmp_path, monkeypatch):
    """Ctrl-C while the .h5ad is written (h5py swallows the exception in its callbacks): 130, no file."""
    out = tmp_path / "out.h5ad"
    script = tmp_path / "slow_write.py"
    # The write itself is made slow (and says when it starts) so that the signal lands inside it.
    script.write_text(
        "import sys, time, anndata\n"
        "real = anndata.AnnData.write_h5ad\n"
        "def slow(self, *a, **k):\n"
        "    print('writing the h5ad', file=sys.stderr, flush=True)\n"
        "    real(self, *a, **k)\n"
        "    for _ in range(100):\n"
        "        time.sleep(0.05)\n"
        "anndata.AnnData.write_h5ad = slow\n"
        "from pyscvibridge.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            "integrate",
            str(CELLBENCH),
            "-o",
            str(out),
            "--batch-key",
            "batch",
            "--max-epochs",
            "1",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    end = time.monotonic() + 240
    while (
        not any("writing the h5ad" in line for line in lines)
        and time.monotonic() < end
        and proc.poll() is None
    ):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "Error: interrupted by SIGINT (Ctrl-C); files being written were removed." in err
    assert "Exception ignored" not in err  # h5py's report of the swallowed exception is dropped
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_an_unraisable_interrupt_prints_nothing_other_errors_still_do(monkeypatch):
    """What h5py does with an exception in its callbacks (sys.unraisablehook) stays quiet for a signal."""
    from pyscvibridge._signals import Interrupted, handling

    reported: list[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))

    class Dropped:
        def __init__(self, exc: BaseException):
            self.exc = exc

        def __del__(self):
            raise self.exc

    with handling():
        Dropped(Interrupted(signal.SIGINT))
        Dropped(ValueError("a real bug"))
    assert [type(e).__name__ for e in reported] == ["ValueError"]
    Dropped(Interrupted(signal.SIGINT))  # outside a command-line run: reported as usual
    assert [type(e).__name__ for e in reported] == ["ValueError", "Interrupted"]


def test_a_swallowed_signal_still_ends_the_run(tmp_path):
    """A library that catches the signal's exception cannot turn it into success: the rename is refused."""
    target = tmp_path / "x.txt"

    def write_and_swallow() -> None:
        with _atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler raises here
            except _signals.Interrupted:
                pass  # swallowed, as h5py does inside its callbacks

    with _signals.handling(), pytest.raises(_signals.Interrupted) as info:
        write_and_swallow()
    assert info.value.exit_code == 143
    assert not target.exists()
    assert _leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored afterwards


# ---------------------------------------------------------------- temporary files


def test_temporary_names_carry_the_pid_and_stale_ones_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    prefix = _atomic.temporary_name_prefix(tmp_path / "out.h5ad")
    assert prefix.startswith(".out.h5ad.psb-")
    assert prefix.endswith(f"-{os.getpid()}-")
    stale = tmp_path / prefix.replace(f"-{os.getpid()}-", f"-{dead.pid}-").__add__("abc12345.tmp.h5ad")
    stale.write_text("left by a killed run")
    alive = tmp_path / (prefix.replace(f"-{os.getpid()}-", f"-{os.getppid()}-") + "abc12345.tmp.h5ad")
    alive.write_text("another run, still writing")
    other_host = tmp_path / f".out.h5ad.psb-elsewhere-{dead.pid}-abc12345.tmp.h5ad"
    other_host.write_text("a run on another machine (a shared file system)")
    foreign = tmp_path / f".out.h5ad.{dead.pid}.tmp.h5ad"
    foreign.write_text("not named by this package")

    with _atomic.atomic_path(tmp_path / "out.h5ad") as tmp:
        assert tmp.name.startswith(prefix)
        assert tmp.name.endswith(".tmp.h5ad")
        tmp.write_text("new")
    assert (tmp_path / "out.h5ad").read_text() == "new"
    assert not stale.exists()
    assert alive.exists()
    assert other_host.exists()
    assert foreign.exists()


def test_stale_r_session_directories_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ours, alive, foreign = (tmp_path / f"Rtmp{x}" for x in ("AAAAAA", "BBBBBB", "CCCCCC"))
    for d in (ours, alive, foreign):
        d.mkdir()
        (d / "file").write_text("x")
    (ours / _atomic.R_OWNER).write_text(f"{_atomic._host()} {dead.pid}\n")
    (alive / _atomic.R_OWNER).write_text(f"{_atomic._host()} {os.getpid()}\n")
    assert _atomic.remove_stale_r_tempdirs() == [ours]
    assert not ours.exists()
    assert alive.exists()
    assert foreign.exists()


# ---------------------------------------------------------------- devices and accelerators (before anything is read)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--devices", "banana"], "--devices 'banana' is not a device count"),
        (["--devices", "3", "--accelerator", "cpu"], "several devices need GPUs"),
        (["--devices", "0"], "give a count of at least 1"),
    ],
)
def test_devices_are_checked_first(tmp_path, args, expected):
    res = CliRunner().invoke(
        cli,
        [
            "integrate",
            str(tmp_path / "missing.h5ad"),
            "-o",
            str(tmp_path / "o.h5ad"),
            "--batch-key",
            "b",
            *args,
        ],
    )
    assert res.exit_code == 2, res.output
    assert expected in res.output
    assert "No such file" not in res.output  # refused before the input is even looked at


def test_several_devices_on_this_cpu_are_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for cmd in (
        ["integrate", str(CELLBENCH), "-o", str(tmp_path / "o.h5ad"), "--batch-key", "batch"],
        ["map", str(CELLBENCH), "--model", str(tmp_path), "-o", str(tmp_path / "o.h5ad")],
    ):
        res = CliRunner().invoke(cli, [*cmd, "--devices", "3"])
        assert res.exit_code == 2, res.output
        assert "several devices need GPUs" in res.output
        res = CliRunner().invoke(cli, [*cmd, "--accelerator", "gpu"])
        assert res.exit_code == 2, res.output
        assert "PyTorch finds no GPU here" in res.output
    res = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "d"), "--accelerator", "cuda"])
    assert res.exit_code == 2
    assert "PyTorch finds no GPU here" in res.output
    assert not (tmp_path / "d").exists()


def test_no_relaunching_strategy_for_several_gpus(monkeypatch):
    """Where there are GPUs, several need a spawning strategy: ddp would run the command once per GPU."""
    import click
    import torch

    from pyscvibridge.cli._common import parse_devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(click.UsageError, match="once per GPU"):
        parse_devices("2", "gpu")
    with pytest.raises(click.UsageError, match="'ddp' would start the whole command again"):
        parse_devices("0,1", "auto", "ddp")
    assert parse_devices("0,1", "gpu", "ddp_spawn_find_unused_parameters_true") == [0, 1]
    assert parse_devices("auto", "gpu") == "auto"
    assert parse_devices("1", "cpu") == 1


# ---------------------------------------------------------------- cheap checks first


def test_bad_key_and_log_normalised_layer_before_scvi_is_imported(tmp_path):
    """A bad --batch-key or a layer that is not raw counts is refused before scvi-tools is imported."""
    code = (
        "import sys\n"
        "from pyscvibridge.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('SCVI_IMPORTED' if 'scvi' in sys.modules else 'SCVI_NOT_IMPORTED', 'TORCH' if 'torch' in sys.modules else '')\n"
        "raise SystemExit(rc)\n"
    )
    import anndata as ad
    import numpy as np

    adata = ad.read_h5ad(CELLBENCH)
    adata.layers["lognorm"] = np.log1p(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X)
    path = tmp_path / "cb.h5ad"
    adata.write_h5ad(path)
    cases = [
        (["--batch-key", "nope"], "--batch-key 'nope' is not a column"),
        (["--batch-key", "batch", "--layer", "lognorm"], "it looks log-normalised"),
    ]
    for extra, expected in cases:
        proc = subprocess.run(
            [sys.executable, "-c", code, "integrate", str(path), "-o", str(tmp_path / "o.h5ad"), *extra],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert expected in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stdout.split() == ["SCVI_NOT_IMPORTED"], proc.stdout


def test_rds_out_with_duplicated_names_is_refused_before_training(tmp_path):
    import anndata as ad

    adata = ad.read_h5ad(CELLBENCH)
    names = list(adata.var_names)
    names[1] = names[0]
    adata.var_names = names
    path = tmp_path / "dups.h5ad"
    adata.write_h5ad(path)
    res = CliRunner().invoke(
        cli,
        [
            "integrate",
            str(path),
            "-o",
            str(tmp_path / "o.h5ad"),
            "--rds-out",
            str(tmp_path / "o.rds"),
            "--batch-key",
            "batch",
        ],
    )
    assert res.exit_code == 1, res.output
    assert "1 gene names occur more than once" in res.output
    assert repr(names[0]) in res.output
    assert "scVI" not in res.output
    assert not (tmp_path / "o.h5ad").exists()


# ---------------------------------------------------------------- full disks


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs (root only; skipped where mounting is not possible)."""
    where = tmp_path / "full"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.r
@pytest.mark.slow
def test_full_disk_convert(tmp_path, full_disk):
    """.h5ad -> .rds and .rds -> .h5ad onto a full disk: one line with the path and ENOSPC, exit 1."""
    rds = tmp_path / "cb.rds"
    done = subprocess.run(
        [*_command(), "-q", "convert", str(CELLBENCH), str(rds)],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for src, dst in ((CELLBENCH, full_disk / "cb.rds"), (rds, full_disk / "cb.h5ad")):
        proc = subprocess.run(
            [*_command(), "-q", "convert", str(src), str(dst)],
            env=_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr  # not 139 (a segfault)
        assert proc.stderr.strip().splitlines() == [
            f"Error: No space left on device (errno 28, ENOSPC): {dst}"
        ]
        assert list(full_disk.iterdir()) == []


@pytest.mark.slow
def test_full_disk_integrate(tmp_path, full_disk):
    out = full_disk / "out.h5ad"
    proc = subprocess.run(
        [
            *_command(),
            "-q",
            "integrate",
            str(CELLBENCH),
            "-o",
            str(out),
            "--batch-key",
            "batch",
            "--max-epochs",
            "1",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"Error: No space left on device (errno 28, ENOSPC): {out}"]
    assert list(full_disk.iterdir()) == []


def test_write_error_is_one_line_in_process(tmp_path, monkeypatch):
    """The same path in process, with ENOSPC simulated in the writer (no mount needed)."""
    import anndata as ad

    def enospc(self, path, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "Driver write request failed (HDF5's words)")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", enospc)
    from pyscvibridge.cli import _files

    monkeypatch.setattr(_files, "FAILED_H5_WRITES", [])
    out = tmp_path / "o.h5ad"
    with pytest.raises(OSError) as info:
        _files.write_h5ad(ad.AnnData(), out)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(out))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- progress, -q


@pytest.mark.slow
def test_progress_in_a_log_is_a_line_every_5_percent(tmp_path):
    """stderr to a file: about 20 progress lines for 100 epochs, not a redraw per step."""
    log = tmp_path / "log.txt"
    with log.open("w") as err:
        proc = subprocess.run(
            [
                *_command(),
                "integrate",
                str(CELLBENCH),
                "-o",
                str(tmp_path / "o.h5ad"),
                "--batch-key",
                "batch",
                "--max-epochs",
                "40",
            ],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
            timeout=600,
        )
    text = log.read_text()
    assert proc.returncode == 0, text
    lines = [line for line in text.splitlines() if line.startswith("scVI: epoch")]
    assert [int(line.split()[2].split("/")[0]) for line in lines] == list(range(2, 41, 2))
    assert "\r" not in text
    assert len(text.splitlines()) < 40


# ---------------------------------------------------------------- odd metadata through the CLI


@pytest.mark.slow
def test_integer_batch_column_and_na_labels_through_the_cli(tmp_path):
    """A numeric sample id as --batch-key (it gave "Can only use .cat accessor") and NA labels with
    --scanvi (refused before): both integrate."""
    import anndata as ad
    import numpy as np

    adata = ad.read_h5ad(CELLBENCH)
    codes = {b: i + 1 for i, b in enumerate(sorted(adata.obs["batch"].unique()))}
    adata.obs["sample_id"] = adata.obs["batch"].map(codes).astype(np.int64)
    labels = adata.obs["cell_line"].astype(object)
    labels.iloc[::10] = None
    adata.obs["label"] = labels
    src = tmp_path / "in.h5ad"
    adata.write_h5ad(src)
    out = tmp_path / "out.h5ad"
    result = CliRunner().invoke(
        cli,
        ["-q", "integrate", str(src), "-o", str(out), "--batch-key", "sample_id", "--labels-key", "label"]
        + ["--max-epochs", "2", "--scanvi", "--scanvi-epochs", "1"],
    )
    assert result.exit_code == 0, result.output
    done = ad.read_h5ad(out)
    assert done.obsm["X_scVI"].shape == (adata.n_obs, 10)
    assert done.uns["scanvi"]["n_labelled"] == int(labels.notna().sum())
    assert done.obs["scanvi_prediction"].notna().all()  # the NA-labelled cells are predicted too
