"""Keep Python processes started from an R-hosting process on this interpreter's own libpython.

R puts its library directories (``/usr/lib/R/lib:/usr/lib/x86_64-linux-gnu:...``) on
``LD_LIBRARY_PATH``: the R launcher does it for R sessions, and rpy2 does it in ``os.environ`` when it
starts R. Child processes inherit it. A Python built with a shared libpython outside the system's
directories (pyenv, conda, a custom prefix) then starts, in a child, with the *system's*
``libpython3.X.so`` and its own standard library: a version mismatch that breaks in odd places
(multiprocessing's ``RLock._recursion_count``, so Lightning's ``ddp_spawn`` workers). Putting this
interpreter's ``LIBDIR`` first on ``LD_LIBRARY_PATH`` makes its children load the right library again;
this process itself is not affected (the loader reads the variable only at start-up).
"""

from __future__ import annotations

import os
import sys
import sysconfig


def own_libpython_first(environ: dict[str, str] | None = None) -> bool:
    """Put this interpreter's ``LIBDIR`` first on ``LD_LIBRARY_PATH`` when a child could pick another
    libpython. Returns whether the variable was changed."""
    env = os.environ if environ is None else environ
    path = env.get("LD_LIBRARY_PATH")
    libdir = sysconfig.get_config_var("LIBDIR")
    if not path or not libdir or not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return False
    ldlibrary = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY") or ""
    if not os.path.exists(os.path.join(libdir, ldlibrary)) or not sys.platform.startswith("linux"):
        return False
    parts = path.split(os.pathsep)
    if parts[0] == libdir:
        return False
    env["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *(p for p in parts if p != libdir)])
    return True
