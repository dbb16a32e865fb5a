#!/usr/bin/env node
"use strict";
const path = require("path");
const fs = require("fs");
const main = path.join(__dirname, "..", "dist", "src", "cli", "main.js");
if (!fs.existsSync(main)) {
  process.stderr.write(`mllm-labs is not built (${path.relative(process.cwd(), main)} is missing): run \`npm run build\` in ${path.dirname(__dirname)}\n`);
  process.exit(2);
}
// Exit once stdout is flushed: on a pipe, writes are asynchronous and a plain
// process.exit() would cut a long report (and its summary line) short.
const exitAfterFlush = (code) => process.stdout.write("", () => process.exit(code));
require(main).main(process.argv.slice(2)).then(
  (code) => exitAfterFlush(code),
  (error) => {
    process.stderr.write(`mllm-labs: ${error && error.message ? error.message : error}\n`);
    process.exit(2);
  },
);
