#!/usr/bin/env python3
"""A small Ponte client in Python, built only from the published contract
(proto/ponte/v1/ponte.proto) with grpcio: what a bank that is not on Rust
writes. It pays, runs an inbox that accepts payments, and reconciles a
settlement cycle by pages (AIP-158: page_size, page_token).

    pip install grpcio grpcio-tools
    python3 clients/python/ponte_client.py demo --endpoint 127.0.0.1:7700 \\
        --certs ponte-data/certs --payments 300 --page-size 100

The stubs are generated from the .proto at start (grpc_tools.protoc) into
a temporary directory; nothing generated is kept in the repository.
Identities: the switch's development CA (`ca.pem`) and one certificate and
key per participant (`10000001.pem`, `10000001.key`) or for the operator
(`operator.pem`, `operator.key`). The switch's development server
certificate is issued for `localhost`, so the channel asks for that name.
"""

import argparse
import datetime
import importlib
import json
import os
import queue
import secrets
import string
import sys
import tempfile
import threading

import grpc
from grpc_tools import protoc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_stubs():
    """Generates ponte_pb2 / ponte_pb2_grpc from the .proto and imports them."""
    out = tempfile.mkdtemp(prefix="ponte-stubs-")
    proto_dir = os.path.join(REPO, "proto", "proto")
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.join(proto_dir, "ponte", "v1", "ponte.proto"),
        ]
    )
    if code != 0:
        sys.exit(f"protoc failed with {code}")
    sys.path.insert(0, out)
    return importlib.import_module("ponte.v1.ponte_pb2"), importlib.import_module("ponte.v1.ponte_pb2_grpc")


def channel(endpoint, certs, name):
    """An mTLS channel as `name` (a participant code or "operator")."""

    def read(file):
        with open(os.path.join(certs, file), "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"),
        private_key=read(f"{name}.key"),
        certificate_chain=read(f"{name}.pem"),
    )
    # Messages of up to 16 MiB each way; pages keep answers under 4 MiB.
    options = [
        ("grpc.ssl_target_name_override", "localhost"),
        ("grpc.max_receive_message_length", 16 << 20),
    ]
    return grpc.secure_channel(endpoint, credentials, options=options)


def new_id(participant):
    """A payment's end-to-end id: 'E', the payer's code, the UTC minute, 11 letters or digits."""
    minute = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M")
    suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(11))
    return f"E{participant}{minute}{suffix}"


def account(pb, participant, number):
    return pb.Account(participant=participant, branch="1", number=number, type=pb.ACCOUNT_TYPE_CHECKING)


class AcceptingInbox:
    """A payee's inbox: accepts every payment, answering on the same stream."""

    def __init__(self, pb, stub):
        self.pb = pb
        self.answers = queue.Queue()
        self.settled = 0
        self.refused = []
        self.call = stub.Inbox(self._up())
        # The switch answers the stream's headers once the inbox is open:
        # a payment sent before that would find the payee offline (AB08).
        self.call.initial_metadata()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _up(self):
        while True:
            answer = self.answers.get()
            if answer is None:
                return
            yield self.pb.InboxUp(answers=[answer])

    def _run(self):
        try:
            for down in self.call:
                for event in down.events:
                    kind = event.WhichOneof("event")
                    if kind == "payment":
                        self.answers.put(
                            self.pb.PayeeAnswer(
                                end_to_end_id=event.payment.end_to_end_id, decision=self.pb.DECISION_ACCEPT
                            )
                        )
                    elif kind == "settled":
                        self.settled += 1
                    elif kind == "refused":
                        self.refused.append(event.refused.error)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise

    def stop(self):
        self.answers.put(None)
        self.call.cancel()


def reconcile(pb, stub, cycle, page_size):
    """Every transfer of `cycle` for the caller, page by page."""
    transfers, token, pages = [], "", 0
    while True:
        page = stub.CycleTransfers(pb.CycleTransfersRequest(cycle=cycle, page_size=page_size, page_token=token))
        pages += 1
        transfers.extend(page.transfers)
        token = page.next_page_token
        if not token:
            return transfers, pages


def demo(args):
    pb, rpc = load_stubs()
    payer, payee = args.payer, args.payee
    payments = rpc.PaymentsStub(channel(args.endpoint, args.certs, payer))
    inbox = AcceptingInbox(pb, rpc.PaymentsStub(channel(args.endpoint, args.certs, payee)))
    settled, rejected = 0, {}
    for n in range(args.payments):
        result = payments.Submit(
            pb.PaymentRequest(
                end_to_end_id=new_id(payer),
                payer=account(pb, payer, "1"),
                payee=pb.Payee(account=account(pb, payee, str(1000 + n))),
                amount="0.01",
                currency="BRL",
                remittance="python client",
            ),
            timeout=30,
        )
        if result.status == pb.PAYMENT_STATUS_SETTLED:
            settled += 1
        else:
            rejected[result.reason.code] = rejected.get(result.reason.code, 0) + 1
    operator = rpc.OperatorStub(channel(args.endpoint, args.certs, "operator"))
    cycle = operator.CloseCycle(pb.CloseCycleRequest()).id
    transfers, pages = reconcile(pb, payments, cycle, args.page_size)
    # What a client learns from the contract's rules, not by failing: a
    # page token of another list is refused INVALID_ARGUMENT.
    try:
        payments.CycleTransfers(pb.CycleTransfersRequest(cycle=cycle, page_token="not-a-token"))
        bad_token = "accepted"
    except grpc.RpcError as error:
        bad_token = error.code().name
    inbox.stop()
    ids = [t.end_to_end_id for t in transfers]
    print(
        json.dumps(
            {
                "settled": settled,
                "rejected": rejected,
                "cycle": cycle,
                "pages": pages,
                "transfers": len(transfers),
                "distinct": len(set(ids)),
                "sent_value_minor": sum(round(float(t.amount) * 100) for t in transfers),
                "bad_token": bad_token,
                "answers_refused": inbox.refused,
            }
        )
    )


def reconcile_command(args):
    """Reads a closed cycle by pages as `--as` and prints its totals."""
    pb, rpc = load_stubs()
    stub = rpc.PaymentsStub(channel(args.endpoint, args.certs, args.participant))
    transfers, pages = reconcile(pb, stub, args.cycle, args.page_size)
    ids = [t.end_to_end_id for t in transfers]
    sent = [t for t in transfers if t.payer.participant == args.participant]
    received = [t for t in transfers if t.payee.participant == args.participant]
    minor = lambda ts: sum(int(t.amount.replace(".", "")) for t in ts)  # exact: amounts have 2 decimals
    print(
        json.dumps(
            {
                "cycle": args.cycle,
                "pages": pages,
                "transfers": len(transfers),
                "distinct": len(set(ids)),
                "sent_count": len(sent),
                "sent_value_minor": minor(sent),
                "received_count": len(received),
                "received_value_minor": minor(received),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="pay, run an inbox, close the cycle, reconcile it by pages")
    d.add_argument("--endpoint", default="127.0.0.1:7700", help="host:port of the switch")
    d.add_argument("--certs", default="ponte-data/certs", help="the development certificates folder")
    d.add_argument("--payer", default="10000001")
    d.add_argument("--payee", default="10000002")
    d.add_argument("--payments", type=int, default=300)
    d.add_argument("--page-size", type=int, default=100)
    r = sub.add_parser("reconcile", help="read a cycle's transfers by pages and print their totals")
    r.add_argument("--endpoint", default="127.0.0.1:7700", help="host:port of the switch")
    r.add_argument("--certs", default="ponte-data/certs", help="the development certificates folder")
    r.add_argument("--as", dest="participant", default="10000001", help="the participant reading")
    r.add_argument("--cycle", type=int, required=True)
    r.add_argument("--page-size", type=int, default=10000)
    args = parser.parse_args()
    if args.command == "demo":
        demo(args)
    elif args.command == "reconcile":
        reconcile_command(args)


if __name__ == "__main__":
    main()
