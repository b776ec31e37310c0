"""README.md and every docs/*.md page: each ```python block runs as written.

How blocks are chosen: a fenced block whose info string starts with ``python``
is run; every other fence (``sh``, ``bash``, ``toml``, ``text``, none) is
shown text and is not run. Python blocks run VERBATIM, in page order, as cells
of one fresh IPython kernel per page (nbclient), so ``%`` magics, comments
after them and names defined in an earlier block behave as a user pasting
them into a notebook sees them. The kernel's working directory is a scratch
folder and ``OPENHCS_NB_SERVER`` names a demo server the test starts (for
jupyterhub.md a CurveZMQ one with the keys the page's variables name).

Two explicit tables bend the rule, and both are checked to be exact:
``PREAMBLES`` give a configuration file the globals of the program that loads
it (``c`` for jupyterhub_config.py), in a cell of its own before the block;
``NOT_RUN`` lists blocks that need something these machines cannot have (a
real OMERO server), each with its reason.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).parent / "notebooks"))
from notebook_env import kernel_env, kill_all, wait_until_gone
from server_process import ServerProcess

from openhcs_nb.server.keys import generate_keys
from openhcs_nb.server.local import LocalServer

ROOT = Path(__file__).resolve().parents[1]
PAGES = (
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/*.md")),
)
#: A fence at the start of a line (the pages have no indented ones), its info
#: string, and the body up to the closing fence.
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
#: First line of a block -> code standing in for the program that loads it.
PREAMBLES = {
    "# jupyterhub_config.py": "from traitlets.config import Config\n\nc = Config()\n",
}
#: (page, first line of the block) -> why it cannot run here.
NOT_RUN = {
    (
        "docs/omero.md",
        'conn = openhcs_nb.connect("omero-host:7710", server_key="...", '
        "omero_session=key)",
    ): "needs a real OMERO server and an openhcs-server joined to it",
}


def python_blocks(page: str) -> list[str]:
    """The ```python blocks of ``page``, in order, exactly as written."""
    text = (ROOT / page).read_text()
    return [
        body
        for info, body in FENCE.findall(text)
        if info.strip().split(" ", 1)[0] == "python"
    ]


def runnable(page: str) -> list[str]:
    return [b for b in python_blocks(page) if (page, b.splitlines()[0]) not in NOT_RUN]


def test_when_blocks_are_chosen_then_fences_other_than_python_are_left_out():
    readme = python_blocks("README.md")
    assert len(readme) == 2
    assert readme[0].startswith("%load_ext openhcs_nb")
    assert not any("./run demo" in block for block in readme)  # the ```sh block
    present = {(page, b.splitlines()[0]) for page in PAGES for b in python_blocks(page)}
    assert set(NOT_RUN) <= present, "a NOT_RUN entry names no block any more"
    assert not any("```" in b for p in PAGES for b in python_blocks(p))
    first_lines = {b.splitlines()[0] for p in PAGES for b in python_blocks(p)}
    assert set(PREAMBLES) <= first_lines, "a PREAMBLES entry names no block"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs")


@pytest.fixture(scope="module")
def demo_address(base: Path):
    """One demo server (the demo plate) for every page that connects."""
    env = kernel_env(base)
    server = LocalServer(
        ["--demo", "--port", "0", "--log-level", "WARNING"],
        base / "demo-server",
        env={"OPENHCS_NB_CACHE": env["OPENHCS_NB_CACHE"]},
    ).start()
    yield server.address
    server.stop()


@pytest.fixture(scope="module")
def hub_env(base: Path, plates_root: Path):
    """A CurveZMQ server and the three variables a hub would set."""
    server_public, server_secret = generate_keys(base / "keys", "server")
    clients = base / "clients"
    _, alice_secret = generate_keys(clients, "alice")
    extra = (
        f'[security]\nserver_secret_key = "{server_secret}"\n'
        f'authorized_keys = "{clients}"\n'
    )
    server = ServerProcess(base / "curve", plates_root, extra=extra).start()
    yield {
        "OPENHCS_NB_SERVER": server.address,
        "OPENHCS_NB_SERVER_KEY": str(server_public),
        "OPENHCS_NB_CLIENT_KEY": str(alice_secret),
    }
    server.kill()


def run_page(page: str, base: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    """Paste ``page``'s blocks into the cells of one notebook and run it."""
    cells = []
    for block in runnable(page):
        preamble = PREAMBLES.get(block.splitlines()[0])
        if preamble:
            cells.append(nbformat.v4.new_code_cell(preamble))
        cells.append(nbformat.v4.new_code_cell(block))
    nb = nbformat.v4.new_notebook(cells=cells)
    work = base / page.replace("/", "_")
    work.mkdir()
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    )
    client.execute(env=env)
    return nb


def outputs(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(str(out.data.get("text/plain", "")))
    return "".join(parts)


@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)])
def test_when_a_page_is_pasted_into_a_notebook_then_every_block_runs(
    page: str, base: Path, demo_address: str, request: pytest.FixtureRequest
):
    page_base = base / f"kernel-{page.replace('/', '_')}"
    env = {**kernel_env(page_base), "OPENHCS_NB_SERVER": demo_address}
    if page == "docs/jupyterhub.md":
        env.update(request.getfixturevalue("hub_env"))
    try:
        nb = run_page(page, page_base, env)
    finally:
        leftovers = wait_until_gone(page_base)
        kill_all(leftovers)
    assert not leftovers, f"servers outlived the kernel: {leftovers}"
    text = "".join(outputs(cell) for cell in nb.cells)
    assert "Traceback" not in text
    magics = [c for c in nb.cells if c.source.startswith("%load_ext openhcs_nb")]
    for cell in magics:
        # The quick start ends with the count table it promises, and neither
        # a repr under the preview nor the "measures nothing" warning.
        shown = outputs(cell)
        assert re.search(r"A01\s+\d+\n.*A02\s+\d+", shown), shown
        assert "PreviewResult" not in shown
        assert "measures nothing" not in shown
    assert len(magics) == (1 if page in ("README.md", "docs/quickstart.md") else 0)
