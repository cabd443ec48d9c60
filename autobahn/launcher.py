# -*- coding: utf-8 -*-
"""Run Autobahn|Testsuite's ``wstest`` with its WebSocket port bound to 127.0.0.1 only.

Python 2.7 only: run it with the interpreter of the py2 virtualenv made by install.sh::

    $AUTOBAHN_HOME/py2/bin/python autobahn/launcher.py -m fuzzingserver -s spec.json -u 0

All arguments are passed through to ``wstest`` unchanged.

Why: ``autobahntestsuite.fuzzing.startServer`` calls ``listenWS(factory, sslContext)``
without an interface, so the server listens on all interfaces whatever the spec's URL says.
``fuzzing.py`` did ``from autobahn.twisted.websocket import listenWS``, so replacing the
name in that module is enough.
"""
from __future__ import print_function

import sys

if sys.version_info[:2] != (2, 7):
    sys.stderr.write("launcher.py needs Python 2.7 (the autobahntestsuite py2 venv)\n")
    sys.exit(2)

# Must come first: installs the Twisted reactor before anything imports
# twisted.internet.reactor (wstest.py does the same as its first import).
import autobahntestsuite.choosereactor  # noqa: E402,F401
import autobahntestsuite.fuzzing as fuzzing  # noqa: E402
import autobahntestsuite.wstest as wstest  # noqa: E402

BIND_INTERFACE = "127.0.0.1"
# run.py waits for this line in the log: it is printed only once the port is really ours
# (a busy port makes listenTCP raise CannotListenError and the process exits with code 1).
READY_MARKER = "WSAPI-LAUNCHER LISTENING"

_orig_listenWS = fuzzing.listenWS


def _listenWS_localhost(factory, contextFactory=None, backlog=50, interface=None):
    listener = _orig_listenWS(factory, contextFactory, backlog=backlog, interface=BIND_INTERFACE)
    host = listener.getHost()
    print("%s %s:%d" % (READY_MARKER, host.host, host.port))
    sys.stdout.flush()
    return listener


fuzzing.listenWS = _listenWS_localhost

# wstest.py imports its sibling as "import fuzzing" (implicit relative import, Python 2):
# make sure that is the very module object patched above.
assert wstest.fuzzing is fuzzing, "wstest uses a different fuzzing module"

if __name__ == "__main__":
    wstest.run()
