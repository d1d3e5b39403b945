"""moto's DynamoDB server for the test harness: serves on 127.0.0.1:PORT, prints 'ready', and stops when
its standard input closes (i.e. when the test process that started it exits, however it exits)."""
import sys

from moto.server import ThreadedMotoServer

port = int(sys.argv[1])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop()
