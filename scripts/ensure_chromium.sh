#!/bin/sh
# Browser tests drive Debian's Chromium through Playwright (`playwright install` cannot download
# browsers here). Install it when missing and we may; otherwise say so: those tests then skip.
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests (once) ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    && exit 0
fi
echo "WARNING: /usr/bin/chromium is missing and cannot be installed here: browser tests will skip." >&2
echo "         Install it with: sudo apt-get install chromium" >&2
exit 0
