"""Kernel start and per-cell round trip with a plain nbclient (jupyter_client), for bench/kernel.js.

usage: /usr/bin/python3 bench/kernel_nbclient.py KERNEL_NAME CELLS REPEATS
Prints one JSON object: {"start_ms": [...], "cell_ms": [...]} (per repeat: kernel start to ready; mean per trivial cell).
"""
import json
import sys
import time

import nbformat
from nbclient import NotebookClient

kernel_name, cells, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start_ms, cell_ms = [], []
for _ in range(repeats):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 + 1") for _ in range(cells)]
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=60)
    t0 = time.perf_counter()
    with client.setup_kernel():
        t1 = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        t2 = time.perf_counter()
    start_ms.append((t1 - t0) * 1000)
    cell_ms.append((t2 - t1) * 1000 / cells)
print(json.dumps({"start_ms": start_ms, "cell_ms": cell_ms}))
