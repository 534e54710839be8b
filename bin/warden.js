#!/usr/bin/env node
// Entry point of `npx warden`: loads the TypeScript sources through tsx, then hands over to the CLI.
'use strict';
require('tsx/cjs');
const { main } = require('../cli/main.ts');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`warden: ${error && error.stack ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
