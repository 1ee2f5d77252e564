"""`logstore serve`: registered as an external command, serves until SIGTERM and then closes
the store cleanly, reports bad configurations and a locked directory in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from wire_support import REPO, SERVER_CONFIG, KioClient, ServeProcess, free_port, req

from logstore.log import CLEAN_SHUTDOWN_FILE

LOGSTORE = os.path.join(os.path.dirname(sys.executable), "logstore")
TIMEOUT_S = 60


def test_serve_is_a_logstore_command_and_wire_is_not_imported_by_logstore():
    done = subprocess.run([LOGSTORE, "serve", "--help"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, cwd=REPO)
    assert done.returncode == 0 and "--dir" in done.stdout and "--port" in done.stdout
    probe = ("import sys, logstore.cli; "
             "print(any(m == 'wire' or m.startswith('wire.') for m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              timeout=TIMEOUT_S, cwd=REPO)
    assert imported.stdout.strip() == "False"


def test_serve_answers_clients_and_stops_cleanly_on_sigterm(tmp_path):
    data_dir = str(tmp_path / "data")
    server = ServeProcess(data_dir, free_port(), SERVER_CONFIG).start()
    with KioClient("127.0.0.1", server.port) as client:
        response = client.call(req(18, 3, client_software_name="cli",
                                   client_software_version="1"))
        assert response.error_code == 0
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(TIMEOUT_S) == 0
    assert os.path.exists(os.path.join(data_dir, CLEAN_SHUTDOWN_FILE))


def test_a_bad_config_and_a_locked_directory_are_one_line_errors(tmp_path):
    data_dir = str(tmp_path / "data")
    done = subprocess.run([LOGSTORE, "serve", "--dir", data_dir, "--port", "0", "--config",
                           "no.such.setting=1"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, cwd=REPO)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "no.such.setting" in done.stderr
    done = subprocess.run([LOGSTORE, "serve", "--dir", data_dir, "--config",
                           "socket.request.max.bytes=-5"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, cwd=REPO)
    assert done.returncode == 1 and "socket.request.max.bytes" in done.stderr
    first = ServeProcess(data_dir, free_port(), SERVER_CONFIG).start()
    try:
        second = subprocess.run([LOGSTORE, "serve", "--dir", data_dir, "--port", "0"],
                                capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)
        assert second.returncode == 1
        assert second.stderr.strip().startswith("logstore serve: error:")
    finally:
        assert first.stop() == 0
