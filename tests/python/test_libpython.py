"""Python processes started after R is up still run on this interpreter's own libpython."""

from __future__ import annotations

import subprocess
import sys
import sysconfig

import pytest

from pyscvibridge._libpython import own_libpython_first

SHARED = bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))
LIBDIR = sysconfig.get_config_var("LIBDIR")


@pytest.mark.skipif(not SHARED, reason="this interpreter links libpython statically: nothing to protect")
def test_libdir_goes_first_once():
    env = {"LD_LIBRARY_PATH": f"/usr/lib/R/lib:/usr/lib/x86_64-linux-gnu:{LIBDIR}"}
    assert own_libpython_first(env)
    assert env["LD_LIBRARY_PATH"] == f"{LIBDIR}:/usr/lib/R/lib:/usr/lib/x86_64-linux-gnu"
    assert not own_libpython_first(env)  # already first: unchanged
    assert env["LD_LIBRARY_PATH"] == f"{LIBDIR}:/usr/lib/R/lib:/usr/lib/x86_64-linux-gnu"


def test_unset_variable_stays_unset():
    env: dict[str, str] = {}
    assert not own_libpython_first(env)
    assert env == {}


@pytest.mark.r
def test_child_python_after_r_started_is_this_python(r):
    """rpy2 puts R's library directories (the system's libpython among them) on LD_LIBRARY_PATH;
    a child Python must still get this interpreter's libpython, or multiprocessing (DDP spawn) breaks."""
    from pyscvibridge.convert import _r

    _r.ri()
    code = "import sys, multiprocessing as mp; mp.get_context('spawn').SimpleQueue(); print(sys.version)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == sys.version
