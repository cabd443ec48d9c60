"""The browser parity harness: the same scenario, written once as data, run in headless
Chromium and in wsapi ("whatwg"), against the same peer; the logs compared
(tests/test_browser_parity.py, docs/parity.md)."""
