"""Supervisor of one run on a local Shipline fabric (started by local_run.go).

Usage: python3 -c <this file> RUN_DIR

RUN_DIR holds spec.json (what to run, written before the start) and run.json
(the record). The supervisor takes RUN_DIR/lock, detaches (a new session, so
the run outlives the worker and a cancel can signal the whole process group),
creates a fresh virtualenv in RUN_DIR/venv, installs the deployed wheels into
it without an index, then runs each task's python_wheel_task entry point in
dependency order, recording states in run.json and output in stdout.log.
SIGTERM cancels: the running task is stopped and the run ends cancelled.
"""
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

# Runs one task inside the virtualenv: the entry point named entry_point in
# the distribution's metadata, else package_name.entry_point() (the way
# Databricks resolves a python_wheel_task). The error goes to $SHIPLINE_TASK_ERROR.
TASK_RUNNER = r'''
import sys, os, importlib, traceback
package, entry, args = sys.argv[1], sys.argv[2], sys.argv[3:]
def fail(msg):
    with open(os.environ["SHIPLINE_TASK_ERROR"], "w") as f:
        f.write(msg)
    sys.exit(1)
try:
    from importlib.metadata import distribution, PackageNotFoundError
    fn = None
    try:
        for ep in distribution(package).entry_points:
            if ep.name == entry:
                fn = ep.load()
                break
    except PackageNotFoundError:
        pass
    if fn is None:
        fn = getattr(importlib.import_module(package), entry, None)
    if not callable(fn):
        fail("entry point %r not found: the wheel %s declares no entry point of that name and %s.%s is not a function" % (entry, package, package, entry))
    sys.argv = [package] + args
    fn()
except SystemExit as e:
    if e.code not in (None, 0):
        fail(e.code if isinstance(e.code, str) else "exited with status %s" % e.code)
except BaseException as e:
    traceback.print_exc()
    fail("".join(traceback.format_exception_only(type(e), e)).strip())
'''


def now():
    return datetime.now(timezone.utc).isoformat()


def main():
    run_dir = sys.argv[1]
    lock = open(os.path.join(run_dir, "lock"), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another supervisor runs it
    record_path = os.path.join(run_dir, "run.json")
    with open(record_path) as f:
        record = json.load(f)
    if record.get("state") == "terminated":
        return 0
    # Detach: the parent returns to the starter; the child keeps the lock.
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    log = open(os.path.join(run_dir, "stdout.log"), "ab", buffering=0)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    Supervisor(run_dir, record_path, record).run()
    return 0


class Supervisor:
    def __init__(self, run_dir, record_path, record):
        self.dir = run_dir
        self.record_path = record_path
        self.record = record
        with open(os.path.join(run_dir, "spec.json")) as f:
            self.spec = json.load(f)
        self.cancelled = False
        self.child = None

    def save(self):
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".run.json.")
        with os.fdopen(fd, "w") as f:
            json.dump(self.record, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.record_path)

    def on_term(self, signum, frame):
        self.cancelled = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()

    def task(self, key):
        return self.record["tasks"][key]

    def run(self):
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGINT, self.on_term)
        self.record["supervisor_pid"] = os.getpid()
        self.save()
        print("shipline: run %s of %s/%s" % (self.record["id"], self.record["project"], self.record["job"]), flush=True)
        err = self.install()
        if err:
            for key in self.record["tasks"]:
                if self.cancelled:
                    self.end_task(key, "cancelled", "run cancelled")
                else:
                    self.end_task(key, "failed", err)
            return self.finish()
        self.record["state"] = "running"
        self.save()
        for t in self.spec["tasks"]:
            if self.cancelled:
                break
            failed = [d for d in t["depends_on"] if self.task(d).get("result") != "success"]
            if failed:
                self.end_task(t["key"], "failed", "upstream task %s did not succeed" % failed[0])
                continue
            self.run_task(t)
        self.finish()

    def install(self):
        venv = os.path.join(self.dir, "venv")
        python = self.spec["python"]
        print("shipline: creating a virtualenv in %s" % venv, flush=True)
        if subprocess.call([python, "-m", "venv", "--without-pip", venv]) != 0:
            return "%s -m venv failed (on Debian, install python3-venv); see stdout.log" % python
        wheels = self.spec["wheels"]
        if not wheels:
            return None
        links = []
        for w in wheels:
            d = os.path.dirname(w)
            if d not in links:
                links += ["--find-links", d]
        vpy = os.path.join(venv, "bin", "python")
        args = ["install", "--no-index", "--disable-pip-version-check", "--no-input"] + links + wheels
        print("shipline: installing %s" % " ".join(wheels), flush=True)
        code = subprocess.call([python, "-m", "pip", "--python", vpy] + args)
        if code != 0:
            # No pip for the interpreter outside (or too old for --python):
            # give the virtualenv its own pip.
            if subprocess.call([vpy, "-m", "ensurepip", "--default-pip"]) == 0:
                code = subprocess.call([vpy, "-m", "pip"] + args)
        if code != 0:
            return "installing the deployed wheels failed (pip exit status %d); see stdout.log" % code
        return None

    def run_task(self, t):
        key = t["key"]
        rec = self.task(key)
        rec.update(state="running", started_at=now())
        self.save()
        err_file = os.path.join(self.dir, "task-%s.error" % key)
        env = dict(os.environ, SHIPLINE_TASK_ERROR=err_file)
        vpy = os.path.join(self.dir, "venv", "bin", "python")
        print("shipline: task %s: %s.%s %s" % (key, t["package_name"], t["entry_point"], " ".join(t["args"])), flush=True)
        self.child = subprocess.Popen([vpy, "-c", TASK_RUNNER, t["package_name"], t["entry_point"]] + t["args"], env=env)
        code = self.child.wait()
        self.child = None
        if self.cancelled:
            return self.end_task(key, "cancelled", "run cancelled")
        if code == 0:
            return self.end_task(key, "success", "")
        msg = "exited with status %d" % code
        try:
            with open(err_file) as f:
                msg = f.read().strip() or msg
        except OSError:
            pass
        self.end_task(key, "failed", msg)

    def end_task(self, key, result, message):
        rec = self.task(key)
        rec.update(state="terminated", result=result, message=message, ended_at=now())
        self.save()

    def finish(self):
        failed = [(t["key"], self.task(t["key"])) for t in self.spec["tasks"] if self.task(t["key"]).get("result") == "failed"]
        for t in self.spec["tasks"]:
            if self.task(t["key"]).get("state") != "terminated":
                self.end_task(t["key"], "cancelled", "run cancelled")
        if self.cancelled:
            self.record.update(result="cancelled", message="run cancelled")
        elif failed:
            key, rec = failed[0]
            self.record.update(result="failed", message="task %s: %s" % (key, rec.get("message", "")))
        else:
            self.record.update(result="success", message="")
        self.record.update(state="terminated", ended_at=now())
        self.save()
        print("shipline: run ended: %s" % self.record["result"], flush=True)


if __name__ == "__main__":
    sys.exit(main())
