"""Check that every notebook re-runs in JupyterLab as `make lab` starts it.

    python -m tools.lab_check              # make lab-check
    python -m tools.lab_check notebooks/07-explorer.ipynb

Starts `make lab` itself (so everything that target fetches and installs is fetched and
installed, as on a fresh clone), headless, on a free local port; then, for each notebook, opens a
session through the server's REST API, as JupyterLab does when it opens a notebook (the kernel
starts in the notebook's folder, with the server's environment), runs its code cells in order
over the kernel's websocket, and reports every cell that raises. Cells tagged
``raises-exception`` may raise. Stops the server at the end and puts the committed figures back;
exit status 1 if any cell failed.

The kernel runs with the CPU's own code paths (`make lab` does not pin them), so printed digits
may differ from the stored outputs: this checks that every cell runs, not what it prints
(nbval does that, under the pins).
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 900  # make lab may first build .venv and fetch the npm packages
CELL_TIMEOUT_S = 900


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(port, token):
    """`make lab`, headless on ``port``; returns the process once the server answers."""
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --IdentityProvider.token={token}"
    lab = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"], cwd=ROOT, start_new_session=True
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if lab.poll() is not None:
            raise SystemExit(f"make lab exited with status {lab.returncode}")
        try:
            api(port, token, "GET", "/api/status")
            return lab
        except OSError:
            time.sleep(2)
    stop_lab(lab)
    raise SystemExit(f"JupyterLab did not answer on port {port} within {START_TIMEOUT_S} s")


def stop_lab(lab):
    """Stop the server and everything `make lab` started (its own process group)."""
    if lab.poll() is None:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()


def api(port, token, method, path, body=None):
    """One call of the server's REST API; the decoded JSON answer (None if empty)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else None


def _execute_request(code, session):
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "lab_check", "session": session}
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
    }
    message = {"header": {**header, "date": "", "version": "5.3"}, "parent_header": {}, "metadata": {}}
    return msg_id, {**message, "content": content, "channel": "shell", "buffers": []}


async def run_cells(port, token, kernel_id, cells):
    """Run ``cells`` (sources) in the kernel, in order; [(cell number, error)] for those that raised."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels"
    socket_ = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    session, failures = uuid.uuid4().hex, []
    for number, code in cells:
        msg_id, message = _execute_request(code, session)
        await socket_.write_message(json.dumps(message))
        while True:
            raw = await asyncio.wait_for(socket_.read_message(), CELL_TIMEOUT_S)
            if raw is None:
                raise ConnectionError("the kernel's websocket closed")
            reply = json.loads(raw)
            if reply["parent_header"].get("msg_id") == msg_id and reply["msg_type"] == "execute_reply":
                break
        if reply["content"]["status"] != "ok":
            failures.append((number, f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}"))
    socket_.close()
    return failures


def check_notebook(port, token, path):
    """Open ``path`` as JupyterLab does and run every code cell; the cells that raised."""
    nb = nbformat.read(path, as_version=4)
    cells = [
        (i, cell.source)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", [])
    ]
    body = {
        "path": str(path.relative_to(ROOT)),
        "type": "notebook",
        "name": path.name,
        "kernel": {"name": "python3"},
    }
    session = api(port, token, "POST", "/api/sessions", body)
    try:
        return asyncio.run(run_cells(port, token, session["kernel"]["id"], cells))
    finally:
        api(port, token, "DELETE", f"/api/sessions/{session['id']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    port, token = _free_port(), uuid.uuid4().hex
    # the notebooks save their figures as they run, here with the CPU's own code paths: put the
    # committed ones back afterwards (their last bits may differ)
    figures = {path: path.read_bytes() for path in (ROOT / "figures").glob("*.png")}
    lab = start_lab(port, token)
    failed = []
    try:
        for path in paths:
            started = time.perf_counter()
            failures = check_notebook(port, token, path)
            print(f"{path.name}: {'FAILED' if failures else 'ran'} ({time.perf_counter() - started:.0f} s)")
            for number, error in failures:
                print(f"  cell {number}: {error}")
            failed += [path.name] if failures else []
    finally:
        stop_lab(lab)
        for path in set((ROOT / "figures").glob("*.png")) - set(figures):
            path.unlink()
        for path, data in figures.items():
            path.write_bytes(data)
    if failed:
        print("FAILED in JupyterLab: " + ", ".join(failed), file=sys.stderr)
        return 1
    print(f"every notebook ran in JupyterLab ({len(paths)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
