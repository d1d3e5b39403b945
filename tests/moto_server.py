"""moto's DynamoDB server for the test harness: serves on 127.0.0.1:PORT, prints 'ready', and stops when
its standard input closes (i.e. when the test process that started it exits, however it exits).

Requests are served one at a time (threaded=False). moto makes a transaction "atomic" by snapshotting the
table and restoring the snapshot on cancellation, which is only correct when no other request runs at the
same time: with a threaded server, a cancelled TransactWriteItems can leak or erase concurrent writes —
something real DynamoDB never does. Serialising requests gives the DynamoDB semantics the tests check."""
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

port = int(sys.argv[1])
app = DomainDispatcherApplication(create_backend_app)
server = make_server("127.0.0.1", port, app, threaded=False, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
server.shutdown()
