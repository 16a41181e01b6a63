#!/usr/bin/env bash
# Installs Debian's Chromium, in which the report test opens the HTML run report headless
# (test/cli/report/report-command.test.ts, through playwright-core). Only the tests need it, so
# infra/test.sh calls this and `make run` does not. A no-op when Chromium is already there.
# Usage: infra/install-browser.sh   (as root on a fresh machine)
set -euo pipefail

[ -x /usr/bin/chromium ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium
