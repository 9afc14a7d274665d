"""The TLS and user identity options of ``dispatch send`` / ``dispatch submit``: parsing
with DCMTK's checks and messages, a real TLS send, and secrets kept out of job records."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dispatch.cli.options import parse_send_args
from dispatch.errors import UsageError
from dispatch.jobs.config import load_config
from dispatch.jobs.model import JobSpec, settings_from_dict, settings_to_dict
from dispatch.jobs.secrets import refuse_secrets_for_broker, with_worker_secrets
from dispatch.settings import (
    AssociationSettings,
    IdentityKind,
    PeerVerification,
    PresentationContext,
    SendPolicy,
    TlsProfile,
    TlsSettings,
    UserIdentity,
)
from tests.cli.conftest import Runner, dispatch_program, run_dispatch
from tests.support.certs import KEY_PASSWORD, TlsCerts, make_certs
from tests.support.dicom_files import make_file

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


def error_of(*args: str) -> str:
    with pytest.raises(UsageError) as caught:
        parse_send_args([*args, "host", "104", "f.dcm"])
    return str(getattr(caught.value, "message", caught.value))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("+pw", "x"), "--use-passwd only allowed with --enable-tls"),
        (("+tla", "+ps"), "--std-passwd only allowed with --enable-tls"),
        (("+cf", "ca.pem"), "--add-cert-file only allowed with --enable-tls or --anonymous-tls"),
        (("-ic",), "--ignore-peer-cert only allowed with --enable-tls or --anonymous-tls"),
        (("-pwd", "p"), "--password only allowed with --user"),
        (("-epw",), "--empty-password only allowed with --user"),
        (("-usr", "a", "-pwd", "b", "-epw"), "--empty-password only allowed with --user"),
        (("-rsp",), "--pos-response only allowed with --user, --kerberos or --saml"),
        (("+pn",), "--profile-null only allowed with --enable-tls or --anonymous-tls"),
        (("+py",), "--profile-bcp195-nd only allowed with --enable-tls or --anonymous-tls"),
        (
            ("+tla", "+pz", "+cs", "TLS_RSA_WITH_AES_128_CBC_SHA"),
            "--cipher not allowed with --profile-bcp195-ex",
        ),
    ],
)
def test_dependencies_are_checked_with_dcmtk_messages(args: tuple[str, ...], message: str) -> None:
    assert error_of(*args) == message


def test_tls_options_become_settings() -> None:
    opts = parse_send_args(["+tls", "k.pem", "c.pem", "+pw", "pw", "+cf", "a.pem", "+cf",
                            "b.pem", "+cd", "dir", "-ic", "+cs",
                            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "--request-sni", "pacs",
                            "-usr", "alice", "-pwd", "s3cret", "-rsp",
                            "h", "104", "f"])  # fmt: skip
    assert opts.tls == TlsSettings(
        "k.pem", "c.pem", key_password="pw", prompt_password=False,
        ca_files=("a.pem", "b.pem"), ca_dirs=("dir",), verification=PeerVerification.IGNORE,
        ciphers=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",), server_name="pacs",
    )  # fmt: skip
    assert opts.identity == UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", "s3cret", True)


@pytest.mark.parametrize(
    ("option", "profile"),
    [
        ("+py", TlsProfile.BCP195_ND),
        ("--profile-bcp195-nd", TlsProfile.BCP195_ND),
        ("+px", TlsProfile.BCP195),
        ("+pz", TlsProfile.BCP195_EX),
        ("+pa", TlsProfile.AES),
        ("+pn", TlsProfile.NULL),
    ],
)
def test_security_profiles_become_settings(option: str, profile: TlsProfile) -> None:
    opts = parse_send_args(["+tla", "+pn", option, "h", "104", "f"])  # the rightmost wins
    assert opts.tls == TlsSettings(profile=profile)


def test_the_default_profile_is_the_non_downgrading_bcp_195_one() -> None:
    opts = parse_send_args(["+tla", "h", "104", "f"])
    assert opts.tls is not None
    assert opts.tls.profile is TlsProfile.BCP195_ND


@pytest.mark.parametrize(
    "args",
    [
        ("+pn", "h", "104", "f"),
        ("+tla", "+pz", "+cs", "TLS_RSA_WITH_AES_128_CBC_SHA", "h", "104", "f"),
    ],
    ids=["profile without TLS", "cipher with +pz"],
)
def test_profile_errors_are_storescus(send: Runner, args: tuple[str, ...]) -> None:
    run = send(*args)
    assert run.code == 1
    assert run.stderr.strip().splitlines()[-1].startswith("error: ")
    expected = error_of(*args[:-3])
    assert run.stderr.strip().splitlines()[-1] == f"error: {expected}"


def test_list_ciphers_prints_storescus_list_and_exits_0(send: Runner) -> None:
    run = send("+cc")
    assert run.code == 0
    listing = run.stdout.split("Supported TLS ciphersuites are:\n", 1)[1].splitlines()
    assert listing[0] == "  TLS_RSA_WITH_NULL_SHA"
    assert "  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in listing
    assert all(line.startswith("  TLS_") for line in listing)


@pytest.fixture(scope="module")
def rsa_server(tls_certs: TlsCerts, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An RSA server key and certificate issued by the test CA (the AES and NULL
    profiles' suites need RSA)."""
    directory = tmp_path_factory.mktemp("rsa")
    key, csr, cert = directory / "rsa.key", directory / "rsa.csr", directory / "rsa.pem"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(csr), "-subj", "/CN=rsa-server"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(tls_certs.ca),
                    "-CAkey", str(tls_certs.ca.with_suffix(".key")), "-CAcreateserial",
                    "-out", str(cert), "-days", "30"], check=True, capture_output=True)  # fmt: skip
    return key, cert


@pytest.mark.parametrize(
    ("profile", "protocol", "suite"),
    [
        ("+py", "TLSv1.3", "TLS_AES_256_GCM_SHA384"),
        ("+px", "TLSv1.3", "TLS_AES_256_GCM_SHA384"),
        ("+pz", "TLSv1.2", "DHE-RSA-AES256-GCM-SHA384"),
        ("+pa", "TLSv1.2", "AES128-SHA"),
        ("+pn", "TLSv1.2", "NULL-SHA"),
    ],
)
def test_each_profile_stores_to_storescp_with_that_profile(
    send: Runner,
    storescp: Callable[..., Any],
    tls_certs: TlsCerts,
    rsa_server: tuple[Path, Path],
    tmp_path: Path,
    profile: str,
    protocol: str,
    suite: str,
) -> None:
    key, cert = rsa_server
    peer = storescp("+tls", str(key), str(cert), "-ic", profile, "-d")
    path = make_file(tmp_path / "a.dcm")
    run = send("+tla", "+cf", tls_certs.ca, profile, "127.0.0.1", peer.port, path)
    assert run.code == 0, run.output
    assert len(peer.files()) == 1
    log = peer.log()
    assert f"Protocol    : {protocol}" in log
    assert f"Ciphersuite : {suite}," in log


def test_anonymous_tls_and_the_rightmost_identity_win() -> None:
    opts = parse_send_args(["+tla", "-kt", "ticket", "-usr", "bob", "h", "104", "f"])
    assert opts.tls == TlsSettings()
    assert opts.identity == UserIdentity(IdentityKind.USERNAME, "bob")


def test_options_without_effect_warn(capsys: pytest.CaptureFixture[str]) -> None:
    parse_send_args(["+tla", "+dp", "dh.pem", "+rs", "seed", "h", "104", "f"])
    err = capsys.readouterr().err
    assert "W: --dhparam has no effect: DH parameters matter to servers only" in err
    assert "W: --seed has no effect" in err


def test_send_over_tls_to_storescp(
    storescp: Callable[..., Any], tls_certs: TlsCerts, tmp_path: Path
) -> None:
    peer = storescp("+tls", str(tls_certs.server.key), str(tls_certs.server.cert),
                    "+cf", str(tls_certs.ca))  # fmt: skip
    path = make_file(tmp_path / "a.dcm")
    run = run_dispatch("+tls", tls_certs.client.key, tls_certs.client.cert, "+cf", tls_certs.ca,
                       "127.0.0.1", peer.port, path)  # fmt: skip
    assert run.code == 0, run.output
    assert len(peer.files()) == 1


def test_wrong_ca_fails_with_exit_1_in_plain_words(
    storescp: Callable[..., Any], tls_certs: TlsCerts, tmp_path: Path
) -> None:
    peer = storescp("+tls", str(tls_certs.server.key), str(tls_certs.server.cert),
                    "+cf", str(tls_certs.ca))  # fmt: skip
    path = make_file(tmp_path / "a.dcm")
    run = run_dispatch("+tls", tls_certs.client.key, tls_certs.client.cert,
                       "+cf", tls_certs.other_ca, "127.0.0.1", peer.port, path)  # fmt: skip
    assert run.code == 1
    assert "unknown CA" in run.output
    assert peer.files() == []


@pytest.mark.parametrize("kind", ["missing", "not a certificate", "a key"])
def test_an_unusable_ca_file_is_ignored_with_storescus_warning(
    send: Runner,
    storescp: Callable[..., Any],
    tls_certs: TlsCerts,
    tmp_path: Path,
    kind: str,
) -> None:
    peer = storescp("+tls", str(tls_certs.server.key), str(tls_certs.server.cert),
                    "+cf", str(tls_certs.ca))  # fmt: skip
    unusable = tmp_path / "unusable.pem"
    if kind == "not a certificate":
        unusable.write_text("hello\n")
    elif kind == "a key":
        unusable.write_bytes(tls_certs.client.key.read_bytes())
    path = make_file(tmp_path / "a.dcm")
    run = send("+tls", tls_certs.client.key, tls_certs.client.cert, "+cf", unusable,
               "+cf", tls_certs.ca, "127.0.0.1", peer.port, path)  # fmt: skip
    assert run.code == 0, run.output
    assert f"W: unable to load certificate file '{unusable}', ignoring" in run.stderr
    assert len(peer.files()) == 1


def test_with_only_an_unusable_ca_file_the_server_is_not_trusted(
    send: Runner, storescp: Callable[..., Any], tls_certs: TlsCerts, tmp_path: Path
) -> None:
    peer = storescp("+tls", str(tls_certs.server.key), str(tls_certs.server.cert),
                    "+cf", str(tls_certs.ca))  # fmt: skip
    path = make_file(tmp_path / "a.dcm")
    run = send("+tls", tls_certs.client.key, tls_certs.client.cert,
               "+cf", tmp_path / "none.pem", "127.0.0.1", peer.port, path)  # fmt: skip
    assert run.code == 1
    assert f"W: unable to load certificate file '{tmp_path / 'none.pem'}', ignoring" in run.stderr
    assert peer.files() == []


def test_unreadable_key_fails_before_connecting(tmp_path: Path) -> None:
    path = make_file(tmp_path / "a.dcm")
    run = run_dispatch("+tls", tmp_path / "none.key", tmp_path / "none.pem",
                       "127.0.0.1", 1, path)  # fmt: skip
    assert run.code == 1
    assert "cannot read private key" in run.output


# -- secrets and the broker ---------------------------------------------------------


def secret_settings() -> AssociationSettings:
    return AssociationSettings(
        "127.0.0.1", 104, (PresentationContext(1, CT, ("1.2.840.10008.1.2",)),),
        tls=TlsSettings("k.pem", "c.pem", key_password="KEYSECRET-1"),
        identity=UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", "IDSECRET-2", True),
    )  # fmt: skip


def test_no_password_reaches_the_job_record() -> None:
    spec = JobSpec("job", "name", secret_settings(), SendPolicy(), 3, 2, "dest")
    record = json.dumps(spec.to_dict())  # what the Redis store writes
    assert "KEYSECRET-1" not in record
    assert "IDSECRET-2" not in record
    back = settings_from_dict(settings_to_dict(secret_settings()))
    assert back.tls is not None and back.tls.key_password is None
    assert not back.tls.prompt_password  # a worker never prompts
    assert back.identity == UserIdentity(IdentityKind.USERNAME, "alice", "", True)


def test_empty_passwords_travel_since_they_are_no_secret() -> None:
    settings = AssociationSettings(
        "h", 104, (), tls=TlsSettings("k", "c", key_password=""),
        identity=UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", ""),
    )  # fmt: skip
    back = settings_from_dict(settings_to_dict(settings))
    assert back.tls is not None and back.tls.key_password == ""
    assert back.identity == UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", "")


def test_submit_with_a_broker_refuses_passwords() -> None:
    with pytest.raises(UsageError, match="DISPATCH_TLS_KEY_PASSWORD"):
        refuse_secrets_for_broker(secret_settings())
    no_key_password = AssociationSettings(
        "h", 104, (), tls=TlsSettings("k", "c"),
        identity=UserIdentity(IdentityKind.USERNAME_PASSCODE, "alice", "IDSECRET-2"),
    )  # fmt: skip
    with pytest.raises(UsageError, match="DISPATCH_IDENTITY_PASSWORD"):
        refuse_secrets_for_broker(no_key_password)


def test_workers_fill_in_their_own_secrets() -> None:
    config = load_config(environ={"DISPATCH_TLS_KEY_PASSWORD": "worker-key",
                                  "DISPATCH_IDENTITY_PASSWORD": "worker-id"})  # fmt: skip
    assert "worker-key" not in repr(config)
    spec = JobSpec.from_dict(
        JobSpec("job", "n", secret_settings(), SendPolicy(), 3, 2, "d").to_dict()
    )
    filled = with_worker_secrets(spec, config).settings
    assert filled.tls is not None and filled.tls.key_password == "worker-key"
    assert filled.identity == UserIdentity(
        IdentityKind.USERNAME_PASSCODE, "alice", "worker-id", True
    )


# -- +ps: the key password typed on a terminal ----------------------------------------


def run_on_terminal(
    args: list[str], answer: str | None, deadline_s: float = 20.0
) -> tuple[int, str]:
    """Run ``dispatch send *args`` on a new pseudo-terminal (its controlling terminal,
    and its standard input, output and error); type ``answer`` and Enter once the pass
    phrase prompt appears. Returns (exit code, everything the terminal showed)."""
    pid, master = pty.fork()
    if pid == 0:  # the child: become dispatch
        try:
            program = dispatch_program()
            os.execv(program[0], [*program, "send", *args])
        finally:
            os._exit(127)
    seen = bytearray()
    typed = False
    end = time.monotonic() + deadline_s
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], end - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child has gone and the terminal is closed
                break
            if not chunk:
                break
            seen += chunk
            if answer is not None and not typed and b"Enter pass phrase for" in seen:
                os.write(master, answer.encode() + b"\n")
                typed = True
    finally:
        os.close(master)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_the_key_password_is_asked_on_the_terminal_and_never_echoed(
    storescp: Callable[..., Any], tls_certs: TlsCerts, tmp_path: Path
) -> None:
    peer = storescp("+tls", str(tls_certs.server.key), str(tls_certs.server.cert),
                    "+cf", str(tls_certs.ca))  # fmt: skip
    path = make_file(tmp_path / "a.dcm")
    code, screen = run_on_terminal(
        ["-d", "+tls", str(tls_certs.encrypted.key), str(tls_certs.encrypted.cert), "+ps",
         "+cf", str(tls_certs.ca), "127.0.0.1", str(peer.port), str(path)],
        KEY_PASSWORD,
    )  # fmt: skip
    assert code == 0, screen
    assert f"Enter pass phrase for {tls_certs.encrypted.key}:" in screen
    assert "I: Requesting Association" in screen  # the log went to the same terminal ...
    assert KEY_PASSWORD not in screen  # ... and neither it nor the echo shows the password
    assert KEY_PASSWORD not in peer.log()
    assert len(peer.files()) == 1


def test_a_wrong_password_typed_on_the_terminal_is_one_error_line_and_nothing_is_sent(
    storescp: Callable[..., Any], tls_certs: TlsCerts, tmp_path: Path
) -> None:
    peer = storescp("+tls", str(tls_certs.server.key), str(tls_certs.server.cert),
                    "+cf", str(tls_certs.ca))  # fmt: skip
    path = make_file(tmp_path / "a.dcm")
    code, screen = run_on_terminal(
        ["+tls", str(tls_certs.encrypted.key), str(tls_certs.encrypted.cert),
         "+cf", str(tls_certs.ca), "127.0.0.1", str(peer.port), str(path)],  # +ps: default
        "not the password",
    )  # fmt: skip
    assert code == 1, screen
    errors = [line for line in screen.splitlines() if line.startswith(("F: ", "E: "))]
    assert len(errors) == 1, screen
    assert "wrong password" in errors[0]
    assert "Traceback" not in screen
    assert "not the password" not in screen
    assert peer.files() == []
    assert "Association Received" not in peer.log()


# -- other TLS failures at the command line ---------------------------------------------


def test_an_unknown_cipher_suite_is_one_line_and_exit_1(
    tls_certs: TlsCerts, tmp_path: Path
) -> None:
    path = make_file(tmp_path / "a.dcm")
    run = run_dispatch("+tls", tls_certs.client.key, tls_certs.client.cert, "+cf", tls_certs.ca,
                       "+cs", "TLS_NO_SUCH_SUITE", "127.0.0.1", 1, path)  # fmt: skip
    assert run.code == 1
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert errors == [
        "F: unknown cipher suite TLS_NO_SUCH_SUITE (IANA name expected, such as"
        " TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
    ], run.stderr


def test_a_revoked_server_certificate_is_reported_in_plain_words(
    storescp: Callable[..., Any], tls_certs: TlsCerts, tmp_path: Path
) -> None:
    peer = storescp("+tls", str(tls_certs.server.key), str(tls_certs.server.cert),
                    "+cf", str(tls_certs.ca))  # fmt: skip
    crl_dir = tmp_path / "crl"
    crl_dir.mkdir()
    (crl_dir / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n"
                                    "default_md = sha256\ndefault_crl_days = 30\n")  # fmt: skip
    (crl_dir / "index.txt").write_text("")
    base = ["openssl", "ca", "-config", "ca.cnf", "-keyfile", str(tls_certs.ca.with_suffix(".key")),
            "-cert", str(tls_certs.ca)]  # fmt: skip
    subprocess.run([*base, "-revoke", str(tls_certs.server.cert)], cwd=crl_dir, check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run([*base, "-gencrl", "-out", "crl.pem"], cwd=crl_dir, check=True,
                   capture_output=True)  # fmt: skip
    path = make_file(tmp_path / "a.dcm")
    run = run_dispatch("+tls", tls_certs.client.key, tls_certs.client.cert,
                       "+cf", tls_certs.ca, "+crl", crl_dir / "crl.pem", "+crv",
                       "127.0.0.1", peer.port, path)  # fmt: skip
    assert run.code == 1
    assert "certificate has been revoked" in run.output
    assert "Traceback" not in run.output
    assert peer.files() == []


def test_a_tls_peer_that_stalls_is_a_network_timeout(tls_certs: TlsCerts, tmp_path: Path) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_certs.server.cert, tls_certs.server.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    release = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        # Handshake, take the A-ASSOCIATE-RQ, send half a PDU header, then nothing.
        with contextlib.suppress(OSError):
            conn = ctx.wrap_socket(listener.accept()[0], server_side=True)
            held.append(conn)
            conn.recv(65536)
            conn.sendall(b"\x02\x00\x00")
            release.wait()

    threading.Thread(target=serve, daemon=True).start()
    path = make_file(tmp_path / "a.dcm")
    started = time.monotonic()
    try:
        run = run_dispatch("+tls", tls_certs.client.key, tls_certs.client.cert, "+cf",
                           tls_certs.ca, "-ts", 1, "127.0.0.1", port, path)  # fmt: skip
    finally:
        release.set()
        for s in (*held, listener):
            with contextlib.suppress(OSError):
                s.close()
    assert run.code == 1
    assert "timed out" in run.output
    assert "Traceback" not in run.output
    assert time.monotonic() - started < 10


def test_a_key_that_cannot_be_loaded_leaves_every_file_not_sent(tmp_path: Path) -> None:
    """A TLS setting that fails before the association: each file still gets its
    outcome in the report and the summary."""
    files = [make_file(tmp_path / f"{n}.dcm", instance_number=n) for n in (1, 2)]
    report = tmp_path / "report.jsonl"
    run = run_dispatch(
        "+tls", tmp_path / "missing.key", tmp_path / "missing.crt", "--report", report,
        "127.0.0.1", "104", *files,
    )  # fmt: skip
    assert run.code == 1
    assert "Traceback" not in run.stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["not_sent", "not_sent"]
    assert "files: 2 (stored 0, failed 0, not sent 2)" in run.stdout
