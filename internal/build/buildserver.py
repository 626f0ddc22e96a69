# Shipline's Python build server (embedded in the Go binary, run as
# `python -c <this file> ROLE`; see server.go for the Go side).
#
# It imports the heavy modules of one role once -- "build": the PEP 517
# frontend `build` and the build backends it can (setuptools, flit_core,
# hatchling, ...); "pytest": pytest -- and then, for each request, forks a
# child that becomes what `python -m MODULE ARGS` would be in a fresh
# interpreter: its own process group, cwd, environment, sys.path, sys.argv
# and standard streams (the build log), then runs MODULE as __main__ and
# exits with its exit code. Nothing a child does reaches the server or the
# next child. For `build`, the frontend's backend hooks (which `python -m
# build` runs in fresh interpreters) run in grandchildren forked the same
# way, so a hook sees what it would see in its own process.
#
# Protocol: one JSON object per line. Requests on stdin:
#   {"id": 1, "module": "build", "args": [...], "dir": "...", "env": ["K=V", ...], "log": "/path"}
#   {"drain": true}   exit once the running children have ended
# Events on stdout:
#   {"event": "ready", "pid": N, "python": "3.11.2", "loaded": [...], "failed": {...}, "files": [...]}
#   {"event": "started", "id": 1, "pid": N}
#   {"event": "exit", "id": 1, "code": 0, "signal": 0, "cpu": 0.08}
#   {"event": "error", "id": 1, "message": "..."}
# End of stdin (the worker went away) kills the running children and exits.
import errno
import io
import json
import os
import runpy
import selectors
import signal
import sys
import traceback

ROLE = sys.argv[1] if len(sys.argv) > 1 else "build"

# What each role imports up front. The first group must import, or the
# server does not start (the worker then builds the plain way); the rest are
# imported when present.
REQUIRED = {"build": ["build", "build.__main__"], "pytest": ["pytest"]}
BACKENDS = ["setuptools.build_meta", "flit_core.buildapi", "hatchling.build", "poetry.core.masonry.api", "pdm.backend"]
WARM = {
    "build": [
        "pep517.wrappers", "pep517.in_process._in_process", "pyproject_hooks", "pyproject_hooks._in_process._in_process",
        "setuptools", "setuptools.command.egg_info", "setuptools.command.build_py", "setuptools.command.sdist",
        "setuptools.command.install", "setuptools.command.install_lib", "setuptools.command.install_scripts",
        "setuptools.command.install_egg_info", "setuptools.command.build", "setuptools.command.bdist_egg",
        "setuptools.config.pyprojecttoml", "setuptools.config.setupcfg", "setuptools.config._validate_pyproject",
        "setuptools._vendor.packaging.requirements", "setuptools.wheel", "wheel.bdist_wheel", "wheel.wheelfile",
        "distutils.command.build", "distutils.command.install", "distutils.command.build_py",
        "distutils.command.install_lib", "distutils.command.install_scripts", "distutils.command.build_scripts",
        "distutils.command.install_data", "distutils.command.install_headers", "distutils.command.bdist",
        "setuptools.command.alias", "setuptools.command.bdist_rpm", "setuptools.command.build_clib",
        "setuptools.command.build_ext", "setuptools.command.develop", "setuptools.command.dist_info",
        "setuptools.command.easy_install", "setuptools.command.editable_wheel", "setuptools.command.rotate",
        "setuptools.command.saveopts", "setuptools.command.test", "setuptools.command.upload",
        "setuptools.command.upload_docs", "setuptools.dep_util", "setuptools.extern.tomli", "setuptools.package_index",
        "setuptools.sandbox", "distutils.ccompiler", "distutils.command.bdist_rpm", "distutils.command.build_clib",
        "distutils.command.build_ext", "distutils.command.upload", "importlib.readers", "importlib.resources.readers",
        "email.generator", "email.policy", "email.message", "zipfile", "tempfile", "shutil", "glob", "tomllib",
        "sysconfig", "_sysconfigdata__x86_64-linux-gnu", "pickle", "unittest", "ssl", "http.client", "urllib.request",
    ],
    "pytest": ["_pytest.python", "_pytest.terminal", "_pytest.assertion.rewrite", "_pytest.runner", "_pytest.fixtures",
               "_pytest.main", "_pytest.config", "tempfile", "shutil", "glob"],
}

# The server's sys.path without its own first entry (-c puts "" there) and
# without PYTHONPATH entries: what a fresh interpreter appends after
# sys.path[0] and PYTHONPATH. The server is started without PYTHONPATH.
BASE_PATH = list(sys.path[1:])

# This code's file name in tracebacks ("<string>" under -c).
THIS_FILE = (lambda: None).__code__.co_filename


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def preload():
    loaded, failed = [], {}
    for name in REQUIRED[ROLE]:
        __import__(name)  # an error here ends the server: the worker falls back
        loaded.append(name)
    for name in (BACKENDS if ROLE == "build" else []) + WARM[ROLE]:
        try:
            __import__(name)
            loaded.append(name)
        except Exception as e:  # a backend that is not installed: not preloaded
            failed[name] = "%s: %s" % (type(e).__name__, e)
    try:
        cache_installed_metadata()
    except Exception as e:  # an importlib.metadata without these internals: read each time
        failed["importlib.metadata cache"] = "%s: %s" % (type(e).__name__, e)
    # What the worker watches: a change to any means a new server.
    files = [sys.executable] + [p for p in BASE_PATH if os.path.isdir(p)]
    for name in REQUIRED[ROLE] + BACKENDS:
        f = getattr(sys.modules.get(name), "__file__", None)
        if f:
            files.append(f)
    return loaded, failed, files


def versions():
    """The versions Shipline's tool probe reports (probeScript in python.go)."""
    import importlib.util
    from importlib import metadata
    out = {"python": sys.version.split()[0]}
    for m in ["build", "pytest", "setuptools", "wheel"]:
        if importlib.util.find_spec(m) is None:
            continue
        try:
            out[m] = metadata.version(m)
        except Exception:
            out[m] = "unknown"
    return out


def cache_installed_metadata():
    """Read the entry points and names of the distributions installed on the
    standard path once: setuptools asks importlib.metadata for entry points
    dozens of times a build, each time reading every installed package's
    entry_points.txt. Distributions elsewhere (the project's own egg-info,
    PYTHONPATH) are still read on each call. The worker restarts the server
    when a directory of the standard path changes (files in the ready event)."""
    import importlib.metadata as md
    eps, names = {}, {}
    for d in md.distributions(path=BASE_PATH):
        key = str(getattr(d, "_path", ""))
        if key and key not in eps:
            eps[key] = d.entry_points
            names[key] = d._normalized_name
    entry_points = md.Distribution.entry_points
    normalized = md.PathDistribution._normalized_name

    def cached_entry_points(self):
        hit = eps.get(str(getattr(self, "_path", "")))
        return hit if hit is not None else entry_points.fget(self)

    def cached_normalized(self):
        hit = names.get(str(getattr(self, "_path", "")))
        return hit if hit is not None else normalized.fget(self)

    md.Distribution.entry_points = property(cached_entry_points)
    md.PathDistribution._normalized_name = property(cached_normalized)


def set_pdeathsig():
    """Linux: the child gets SIGKILL when the process that forked it dies."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def fresh_stdio():
    """Standard streams as a fresh interpreter opens them on fds 1 and 2 (the
    inherited objects, with whatever their buffers hold, are kept alive and
    never flushed)."""
    kept.extend([sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__])
    out, err = sys.__stdout__, sys.__stderr__

    def reopen(fd, like, line_buffering):
        raw = io.FileIO(fd, "w", closefd=False)
        return io.TextIOWrapper(io.BufferedWriter(raw), encoding=like.encoding, errors=like.errors,
                                line_buffering=line_buffering, write_through=like.write_through)

    sys.stdout = sys.__stdout__ = reopen(1, out, out.line_buffering)
    sys.stderr = sys.__stderr__ = reopen(2, err, True)


kept = []


def exit_code(e):
    """The exit status a fresh interpreter gives SystemExit(e.code)."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stdout.flush()  # as the interpreter does before it prints the message
        sys.stderr.write(str(code) + "\n")
    except Exception:
        pass
    return 1


def finish(code):
    """End a child as a fresh interpreter ends: its other threads joined,
    atexit handlers run, streams flushed."""
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:
            pass
    try:
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except BaseException:
            pass
    os._exit(code)


def fresh_exit_state():
    """Exit handlers as a fresh interpreter has them: none of the forking
    process's (a parent's weakref finalizers would, for example, remove its
    temporary directories when a child exits), except the ones its modules
    register when imported."""
    import atexit
    import weakref
    atexit._clear()
    weakref.finalize._registry.clear()
    weakref.finalize._registered_with_atexit = False
    if "logging" in sys.modules:
        atexit.register(sys.modules["logging"].shutdown)


def become(path0, argv, env, cwd, run):
    """Turn this freshly forked process into a new interpreter's main run:
    cwd, environment, sys.path (path0, then PYTHONPATH, then the standard
    entries), sys.argv; run() is the main module. Never returns."""
    code = 1
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [path0] + [os.path.abspath(p) for p in extra] + BASE_PATH
        sys.argv[:] = argv
        fresh_stdio()
        fresh_exit_state()
        try:
            run()
            code = 0
        except SystemExit as e:
            code = exit_code(e)
        except BaseException:
            # As the interpreter reports an uncaught exception, without this file's frames.
            t, v, tb = sys.exc_info()
            try:
                sys.stdout.flush()  # as the interpreter does before it prints the traceback
            except BaseException:
                pass
            while tb is not None and tb.tb_frame.f_code.co_filename in (THIS_FILE, runpy.run_path.__code__.co_filename):
                tb = tb.tb_next
            traceback.print_exception(t, v, tb)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        finish(code)


def hook_runner(cmd, cwd=None, extra_environ=None):
    """The PEP 517 hook runner for `build` in a child: a hook (`python
    _in_process.py HOOK DIR`) runs in a forked grandchild as it would in a
    fresh interpreter, unless it names another interpreter."""
    import subprocess
    env = dict(os.environ)
    env.update(extra_environ or {})
    if cmd[0] != sys.executable or len(cmd) < 2 or not cmd[1].endswith(".py"):
        return subprocess.check_call(cmd, cwd=cwd, env=env)  # what the default runner does
    for f in (sys.stdout, sys.stderr):
        f.flush()
    pid = os.fork()
    if pid == 0:
        set_pdeathsig()
        script = cmd[1]
        become(os.path.dirname(script), list(cmd[1:]), env, cwd or os.getcwd(),
               lambda: runpy.run_path(script, run_name="__main__"))
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    if code != 0:
        raise subprocess.CalledProcessError(code, cmd)


def patch_build_frontend():
    import build
    init = build.ProjectBuilder.__init__

    def patched(self, *args, **kwargs):
        kwargs["runner"] = hook_runner
        init(self, *args, **kwargs)

    build.ProjectBuilder.__init__ = patched


def child(req, wake):
    os.setpgid(0, 0)
    set_pdeathsig()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in wake:
        os.close(fd)
    log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    env = dict(kv.split("=", 1) for kv in req["env"] if "=" in kv)
    module = req["module"]
    # A fresh `python -m MODULE` has not imported MODULE.__main__ yet.
    sys.modules.pop(module + ".__main__", None)
    if module == "build":
        patch_build_frontend()
    become(os.path.abspath(req["dir"]), [module] + list(req["args"]), env, req["dir"],
           lambda: runpy.run_module(module, run_name="__main__", alter_sys=True))


def main():
    try:
        loaded, failed, files = preload()
    except BaseException:
        traceback.print_exc()
        sys.exit(3)
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    emit({"event": "ready", "pid": os.getpid(), "python": sys.version.split()[0], "role": ROLE,
          "versions": versions(), "loaded": loaded, "failed": failed, "files": files})

    sel = selectors.DefaultSelector()
    os.set_blocking(0, False)
    sel.register(0, selectors.EVENT_READ, "in")
    sel.register(rfd, selectors.EVENT_READ, "wake")
    children = {}  # pid -> request id
    pending = b""
    draining = closed = False

    def reap():
        while children:
            try:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            rid = children.pop(pid, None)
            if rid is None:
                continue
            ev = {"event": "exit", "id": rid, "code": 0, "signal": 0, "cpu": round(ru.ru_utime + ru.ru_stime, 4)}
            if os.WIFSIGNALED(status):
                ev["signal"] = os.WTERMSIG(status)
                ev["code"] = 128 + ev["signal"]
            else:
                ev["code"] = os.WEXITSTATUS(status)
            emit(ev)

    def start(req):
        rid = req.get("id")
        try:
            pid = os.fork()
        except OSError as e:
            emit({"event": "error", "id": rid, "message": "fork: %s" % e})
            return
        if pid == 0:
            try:
                child(req, (rfd, wfd))
            finally:
                os._exit(120)
        try:
            os.setpgid(pid, pid)  # also done by the child: whichever runs first
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.ESRCH):
                raise
        children[pid] = rid
        emit({"event": "started", "id": rid, "pid": pid})

    while True:
        if (draining or closed) and not children:
            return
        for key, _ in sel.select():
            if key.data == "wake":
                try:
                    while os.read(rfd, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
                continue
            try:
                data = os.read(0, 65536)
            except BlockingIOError:
                continue
            if not data:
                # The worker is gone or stopped the server: nothing may outlive it.
                sel.unregister(0)
                closed = True
                for pid in list(children):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                continue
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not line.strip():
                    continue
                req = json.loads(line)
                if req.get("drain"):
                    draining = True
                    continue
                start(req)
        reap()


if __name__ == "__main__":
    main()
