#!/usr/bin/env python3
"""Interop check: a Python gRPC client (grpcio) speaks the deconfliction.v1 contract to the Rust
broker over mutual TLS. Stubs are generated from proto/ at run time (grpcio-tools), so this
uses exactly the committed contract.

Usage: interop.py PROTO_DIR BROKER_ADDR CA_PEM CERT_PEM KEY_PEM
Prints one JSON line: {"operation_id": ..., "hits": [...], "agency_id": ...}.
"""
import json
import os
import sys
import tempfile
import time
import uuid


def generate(proto_dir, out_dir):
    from grpc_tools import protoc
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = [
        os.path.join(root, f)
        for root, _, names in os.walk(os.path.join(proto_dir, "deconfliction"))
        for f in names
        if f.endswith(".proto")
    ]
    code = protoc.main(
        ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
        + files
    )
    if code != 0:
        sys.exit(f"protoc failed ({code}) on {files}")
    # Make the generated packages importable.
    for root, dirs, _ in os.walk(out_dir):
        for d in dirs:
            open(os.path.join(root, d, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)


def main():
    proto_dir, addr, ca, cert, key = sys.argv[1:6]
    out = tempfile.mkdtemp(prefix="dcf-py-")
    generate(proto_dir, out)
    import grpc
    from deconfliction.v1 import broker_pb2, broker_pb2_grpc

    read = lambda p: open(p, "rb").read()
    creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
    # The broker's development certificate names localhost.
    options = (("grpc.ssl_target_name_override", "localhost"),)
    with grpc.secure_channel(addr, creds, options) as channel:
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = broker_pb2_grpc.BrokerStub(channel)
        info = stub.GetFederationInfo(broker_pb2.GetFederationInfoRequest(), timeout=20)
        now = int(time.time())
        token = os.urandom(32)
        op_id = str(uuid.uuid4())
        window = broker_pb2.Window(start_unix=now - 60, end_unix=now + 3600)
        resp = stub.RegisterOperation(
            broker_pb2.RegisterOperationRequest(
                operation_id=op_id,
                window=window,
                tokens=[broker_pb2.TokenEntry(token=token, kind=broker_pb2.SELECTOR_KIND_PHONE, local_ref=7)],
            ),
            timeout=20,
        )
        assert resp.created, resp
        check = stub.Check(
            broker_pb2.CheckRequest(
                window=window,
                tokens=[
                    broker_pb2.TokenEntry(token=token, kind=broker_pb2.SELECTOR_KIND_PHONE),
                    broker_pb2.TokenEntry(token=os.urandom(32), kind=broker_pb2.SELECTOR_KIND_PHONE),
                ],
            ),
            timeout=20,
        )
        # A bad request gets a precise status, not a crash.
        try:
            stub.RegisterOperation(
                broker_pb2.RegisterOperationRequest(operation_id="not-a-uuid", window=window, tokens=[]),
                timeout=20,
            )
            bad = "accepted"
        except grpc.RpcError as e:
            bad = e.code().name
        print(json.dumps({
            "operation_id": op_id,
            "hits": list(check.hits),
            "agency_id": info.agency_id,
            "bad_request": bad,
        }))


if __name__ == "__main__":
    main()
