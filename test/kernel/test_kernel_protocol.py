"""Jupyter's kernel conformance tests (Debian's python3-jupyter-kernel-test) against the lab kernel.

Run by test/kernel_protocol.test.ts with JUPYTER_PATH pointing at the project's .jupyter folder:
    JUPYTER_PATH=.jupyter /usr/bin/python3 -m unittest -v test/kernel/test_kernel_protocol.py
"""
import unittest

import jupyter_kernel_test


class LabKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "mllm-labs"
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("to stderr")'
    code_generate_error = 'throw new Error("this cell fails")'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "const answer: number = 40;\nanswer + 2", "result": "42"},
        {"code": "await Promise.resolve(2 ** 10)", "result": "1024"},
    ]
    code_display_data = [
        {"code": 'import * as tslab from "tslab";\ntslab.display.html("<b>bold</b>")', "mime": "text/html"},
        {"code": 'import * as tslab from "tslab";\ntslab.display.png(new Uint8Array([137, 80, 78, 71]))', "mime": "image/png"},
    ]
    completion_samples = [{"text": "Math.fl", "matches": {"floor"}}]
    complete_code_samples = ["1 + 1", "function f() { return 1; }"]
    incomplete_code_samples = ["function f() {", "const x = ["]
    code_inspect_sample = "Math.max"
    code_clear_output = 'import { clearOutput } from "mllm-labs/display";\nclearOutput()'


if __name__ == "__main__":
    unittest.main()
