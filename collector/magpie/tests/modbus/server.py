"""A pymodbus server holding the register map the modbus tests read.

    server.py tcp PORT LOG         Modbus TCP on 127.0.0.1:PORT
    server.py rtu DEVICE BAUD LOG  Modbus RTU on a serial device (one end of a pty pair), 8N1

Every request received is appended to LOG as `function address count`, so a test can count
the requests one scrape makes. Holding registers 0..23, input registers 0..2, coils 0..2 and
discrete inputs 0..1 exist; any other address draws ILLEGAL DATA ADDRESS.
"""

import struct
import sys

from pymodbus.server import StartSerialServer, StartTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def words(fmt, value, little=False):
    """The 16-bit words of `value` packed big endian, in the given word order."""
    raw = struct.pack(">" + fmt, value)
    ws = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return ws[::-1] if little else ws


HOLDING = (
    words("f", 1234.5)  # 0: float32 big
    + words("f", -2.25, little=True)  # 2: float32 little
    + words("h", -7)  # 4: int16
    + words("H", 65000)  # 5: uint16
    + words("i", -100000)  # 6: int32 big
    + words("I", 3000000000, little=True)  # 8: uint32 little
    + words("q", -5000000000)  # 10: int64 big
    + words("Q", 2**40 + 5, little=True)  # 14: uint64 little
    + words("d", 0.1)  # 18: float64 big
    + [1]  # 22: bool
    + [2305]  # 23: uint16, scale 0.1
)
INPUT = [42] + words("i", 70000)
COILS = [True, False, True]
DISCRETE = [False, True]


def device():
    return SimDevice(
        id=0,
        simdata=(
            [SimData(address=0, values=COILS, datatype=DataType.BITS)],
            [SimData(address=0, values=DISCRETE, datatype=DataType.BITS)],
            [SimData(address=0, values=HOLDING, datatype=DataType.REGISTERS)],
            [SimData(address=0, values=INPUT, datatype=DataType.REGISTERS)],
        ),
    )


def main():
    mode = sys.argv[1]
    log = open(sys.argv[-1], "a", buffering=1)

    def trace(sending, pdu):
        if not sending:
            log.write(f"{pdu.function_code} {pdu.address} {pdu.count}\n")
        return pdu

    if mode == "tcp":
        print("serving", flush=True)
        StartTcpServer(device(), address=("127.0.0.1", int(sys.argv[2])), trace_pdu=trace)
    else:
        print("serving", flush=True)
        StartSerialServer(
            device(),
            port=sys.argv[2],
            baudrate=int(sys.argv[3]),
            parity="N",
            bytesize=8,
            stopbits=1,
            trace_pdu=trace,
        )


main()
