"""Issue #11 items 6, 7, 10, 14 (files): one process owns a run folder (a killed owner leaves nothing stuck),
writes are atomic with the usual file mode, killed writers' temporaries are cleaned, OSErrors are one line."""
import os
import signal
import subprocess
import sys

import pytest

from repghost_mini.files import RunFolderBusy, RunLock, atomic_output, make_folder, write_json_atomic, write_text_atomic


def hold_lock(folder):
    """A child process that takes the run-folder lock and sleeps (until killed)."""
    code = ("import sys, time; from repghost_mini.files import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert child.stdout.readline().strip() == "locked"
    return child


def test_second_owner_is_refused_and_a_killed_owner_leaves_nothing_stuck(tmp_path):
    run = tmp_path / "run"
    child = hold_lock(run)
    try:
        with pytest.raises(RunFolderBusy, match=f"in use by process {child.pid}") as err:
            RunLock(run).acquire()
        assert "\n" not in str(err.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    (run / ".checkpoint.pth.abc123.tmp").write_bytes(b"half a checkpoint")  # what a killed writer leaves
    (run / "checkpoint.pth.k9.tmp").write_bytes(b"older naming")
    (run / "notes.tmp").write_text("the user's own file")
    with RunLock(run) as lock:  # taken at once: the kernel dropped the dead process's lock
        assert lock.path.read_text() == f"process {os.getpid()}"
        assert sorted(p.name for p in run.iterdir()) == [".lock", "notes.tmp"]
    assert sorted(p.name for p in run.iterdir()) == ["notes.tmp"]  # the lock file goes with its owner


def test_atomic_write_keeps_the_old_file_on_error_and_uses_the_usual_mode(tmp_path):
    target = write_text_atomic(tmp_path / "report.md", "good")
    with pytest.raises(ZeroDivisionError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            1 / 0  # noqa: B018 -- the error raised inside atomic_output
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    write_json_atomic(target, {"a": 1})
    assert target.read_text() == '{\n "a": 1\n}'


def test_unwritable_places_give_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    for bad, words in ((tmp_path / "file", "is a file, not a folder"),
                       (tmp_path / "file" / "deeper" / "x", "part of the folder path is a file")):
        with pytest.raises(OSError, match=words) as err:
            make_folder(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_text_atomic(tmp_path, "x")
    if os.geteuid() != 0:  # root ignores permissions; the read-only tmpfs tests cover root
        ro = make_folder(tmp_path / "ro")
        ro.chmod(0o500)
        with pytest.raises(OSError, match="permission denied"):
            write_text_atomic(ro / "x", "x")
