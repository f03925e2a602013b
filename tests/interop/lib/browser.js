// Headless Debian chromium through playwright-core, for the tests that drive a page.
"use strict";

const { chromium } = require("playwright-core");
const { defer } = require("./harness");

const BROWSER_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

// A fresh browser, closed when the test run ends.
async function launch() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: BROWSER_ARGS });
  defer(() => browser.close());
  return browser;
}

module.exports = { launch };
