"""The TLS and user identity options of ``dispatch send`` / ``dispatch submit``: parsing
with DCMTK's checks and messages, a real TLS send, and secrets kept out of job records."""

from __future__ import annotations

import json
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
    TlsSettings,
    UserIdentity,
)
from tests.cli.conftest import run_dispatch
from tests.support.certs import TlsCerts, make_certs
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
