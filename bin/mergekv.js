#!/usr/bin/env -S node --min-semi-space-size=8
"use strict";
require("../dist/src/cli.js").main(process.argv.slice(2));
