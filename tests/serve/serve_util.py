"""Starting and stopping `forma serve` for the Python tests of tests/serve (run by serve_test.cpp)."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`forma serve` on a free port, its log in LOG_DIR/serve-PORT.log; stop() sends SIGTERM."""

    def __init__(self, forma, model_dir, log_dir, *extra, threads=1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(log_dir, f"serve-{self.port}.log")
        self.log = open(self.log_path, "w")
        args = [forma, "serve", "--model", model_dir, "--port", str(self.port), "--served-model-name", "tiny",
                "--device", "cpu", "--threads", str(threads), *extra]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"forma serve exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.time() > deadline:
                raise RuntimeError("forma serve did not answer /health:\n" + self.log_text())
            time.sleep(0.1)

    def log_text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=60):
        """SIGTERM, then the exit status (killed, and an error, if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("forma serve did not exit after SIGTERM:\n" + self.log_text())

    def raw(self, method, path, body=None, headers=None):
        """(status, body text) of one request; body may be bytes or a JSON-able object."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name):
        """The value of an unlabelled metric line of /metrics."""
        _, text = self.raw("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)


def forma_json(forma, *args, stdin=None):
    """Runs `forma ARGS` (with STDIN as its input) and parses its last stdout line as JSON."""
    out = subprocess.run([forma, *args], input=stdin, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"forma {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


failures = []  # what the checks of one script found wrong (expect appends, report prints)


def expect(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def report(server):
    """The script's exit status: 0 when every check passed, else 1 with the server's log."""
    if failures:
        if server:
            print("server log:\n" + server.log_text()[-4000:])
        print(f"{len(failures)} failures")
        return 1
    print("all checks passed")
    return 0
