"""The A-ASSOCIATE PDUs (PS3.8 9.3.2-9.3.4): the request we send, and the accept or
reject that answers it.

Every item and sub-item is a type (1 byte), a reserved byte, a big endian length (2)
and the value. The request is byte for byte what pynetdicom's encoder makes of the
same settings, and refuses what it refuses (``tests/net/test_pdu.py`` checks both);
it is built here because importing pynetdicom costs a tenth of a second and more in
every process that sends. The decoders skip item types they do not know (PS3.8 9.3.1)
and raise :class:`ProtocolError` for anything else they cannot read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from dispatch.errors import ProtocolError, UsageError
from dispatch.net.pdu import ASSOCIATE_AC, ASSOCIATE_RJ, ASSOCIATE_RQ, PDU_HEADER
from dispatch.net.recent import Recent
from dispatch.settings import AssociationSettings, IdentityKind, UserIdentity
from dispatch.uids import (
    APPLICATION_CONTEXT,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)

# Item types (PS3.8 9.3.2, Annex D; PS3.7 D.3.3).
_APPLICATION_CONTEXT = 0x10
_CONTEXT_RQ = 0x20
_CONTEXT_AC = 0x21
_ABSTRACT_SYNTAX = 0x30
_TRANSFER_SYNTAX = 0x40
_USER_INFORMATION = 0x50
_MAXIMUM_LENGTH = 0x51
_IMPLEMENTATION_CLASS = 0x52
_ROLE_SELECTION = 0x54
_IMPLEMENTATION_VERSION = 0x55
_EXTENDED_NEGOTIATION = 0x56
_USER_IDENTITY_RQ = 0x58
_USER_IDENTITY_AC = 0x59

_RQ_HEAD = struct.Struct(">BxLHxx16s16s32x")
"""Type, length, protocol version, called and calling AE titles (PS3.8 Table 9-11)."""
_FIXED_LENGTH = 74
"""Bytes of an A-ASSOCIATE-RQ or -AC before its variable items."""
_ITEM = struct.Struct(">BxH")
_ITEM_LIMIT = 0xFFFF
_PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class Negotiated:
    """What the peer's A-ASSOCIATE-AC said."""

    results: dict[int, tuple[int, str]]
    """Context id -> (result, accepted transfer syntax or "")."""
    max_pdu: int
    """The peer's maximum PDU length received; 0 means unlimited."""
    implementation_class_uid: str
    implementation_version_name: str
    identity_response: bytes | None = None
    """The server response of a user identity item, None when the AC had none."""


# -- the request ---------------------------------------------------------------------


def encode_associate_rq(settings: AssociationSettings) -> bytes:
    """The A-ASSOCIATE-RQ PDU proposing ``settings.contexts``.

    Raises :class:`UsageError` for values the standard does not allow (an AE title
    empty, with DCMTK's words "Illegal service parameter: Calling AP Title", or longer
    than 16 characters, a UID longer than 64, an item too long for its
    2-byte length), and for a Kerberos, SAML or JWT file that cannot be read.
    """
    token = _identity_token(settings.identity)
    key = (settings, token)
    cached = _RQ_CACHE.get(key)
    if cached is not None:
        return cached
    encoded = _encode_associate_rq(settings, token)
    _RQ_CACHE.put(key, encoded)
    return encoded


_RQ_CACHE: Recent[tuple[AssociationSettings, bytes], bytes] = Recent(16)
"""Encoded requests by settings and identity token: a worker opens one association per
chunk with the same settings. The token file is read for every request (a few hundred
bytes), so a ticket or JWT rotated on disk goes out from the next association on."""


def _encode_associate_rq(settings: AssociationSettings, token: bytes) -> bytes:
    # Checked in much the order pynetdicom checked, so that of several faults the same
    # one is reported; the called AE title before the calling one, as DCMTK does.
    called = _ae_title(settings.called_ae, "Called AE Title")
    calling = _ae_title(settings.calling_ae, "Calling AE Title")
    if not 0 <= settings.max_pdu <= 0xFFFFFFFF:
        raise UsageError(f"Maximum Length Received must be 0 to 4294967295: {settings.max_pdu}")
    user = [_item(_MAXIMUM_LENGTH, settings.max_pdu.to_bytes(4, "big")), _IMPLEMENTATION_ITEMS]
    # Role selection and extended negotiation items follow, in the profile's order
    # (PS3.7 D.3.3: the order of user information sub-items is free).
    for role in settings.roles:
        uid = _uid(role.sop_class, "SOP Class UID")
        if not role.scu and not role.scp:
            raise UsageError(f"SCU and SCP Roles cannot both be unsupported for '{uid.decode()}'")
        value = len(uid).to_bytes(2, "big") + uid + bytes((role.scu, role.scp))
        user.append(_item(_ROLE_SELECTION, value, "SCP/SCU role selection item"))
    for ext in settings.extended:
        uid = _uid(ext.sop_class, "SOP Class UID")
        value = len(uid).to_bytes(2, "big") + uid + ext.data
        user.append(_item(_EXTENDED_NEGOTIATION, value, "extended negotiation item"))
    if settings.identity is not None:
        user.append(_identity_item(settings.identity, token))
    items = [_APPLICATION_CONTEXT_ITEM]
    for context in settings.contexts:
        items.append(
            _context_item(context.context_id, context.abstract_syntax, context.transfer_syntaxes)
        )
    items.append(_item(_USER_INFORMATION, b"".join(user), "user information item"))
    body = b"".join(items)
    length = _FIXED_LENGTH - PDU_HEADER.size + len(body)
    return _RQ_HEAD.pack(ASSOCIATE_RQ, length, _PROTOCOL_VERSION, called, calling) + body


def _item(item_type: int, value: bytes, what: str = "item") -> bytes:
    if len(value) > _ITEM_LIMIT:
        raise UsageError(
            f"{what} too long for an A-ASSOCIATE-RQ: {len(value)} bytes, at most {_ITEM_LIMIT}"
        )
    return _ITEM.pack(item_type, len(value)) + value


def _ae_title(value: str, name: str) -> bytes:
    """``value`` padded to 16 bytes; :class:`UsageError` for what PS3.5 does not allow
    in an AE (leading and trailing spaces are kept, as pynetdicom keeps them). An empty
    title gets DCMTK's message (its ASC layer calls the AE an AP title)."""
    if not value:
        raise UsageError(f"Illegal service parameter: {name.replace('AE', 'AP')}")
    if not value.strip():
        raise UsageError(f"Invalid '{name}' value - must not consist entirely of spaces")
    why = ""
    if len(value) > 16:
        why = "must not exceed 16 characters"
    elif not value.isascii():
        why = "must only contain ASCII characters"
    elif "\\" in value or any(c < " " or c == "\x7f" for c in value):
        why = "must not contain control characters or backslashes"
    if why:
        raise UsageError(f"Invalid '{name}' value '{value}' - {why}")
    return value.ljust(16).encode("ascii")


def _uid(value: str, name: str) -> bytes:
    """``value`` without surrounding whitespace, unpadded. Only the length and the
    character set are checked: a non-conformant UID is proposed as it is."""
    uid = value.strip()
    if len(uid) > 64:
        raise UsageError(f"Invalid '{name}' value '{uid}' - must not exceed 64 characters")
    if not uid.isascii():
        raise UsageError(f"Invalid '{name}' value '{uid}' - must only contain ASCII characters")
    return uid.encode("ascii")


def _context_item(context_id: int, abstract_syntax: str, syntaxes: tuple[str, ...]) -> bytes:
    if not 1 <= context_id <= 255 or context_id % 2 == 0:
        raise UsageError("'context_id' must be an odd integer between 1 and 255, inclusive")
    abstract = _item(_ABSTRACT_SYNTAX, _uid(abstract_syntax, "abstract_syntax"))
    parts = [bytes((context_id, 0, 0, 0)), abstract]
    seen: set[bytes] = set()
    for syntax in syntaxes:
        uid = syntax.strip()
        if not 0 < len(uid) <= 64:
            raise UsageError("'transfer_syntax' contains an invalid UID")
        encoded = _uid(uid, "transfer_syntax")
        if encoded not in seen:  # a repeated syntax is proposed once
            seen.add(encoded)
            parts.append(_item(_TRANSFER_SYNTAX, encoded))
    return _item(_CONTEXT_RQ, b"".join(parts), "presentation context item")


IDENTITY_FILE_LIMIT = 65535
"""Bytes of a Kerberos ticket, SAML assertion or JWT file that are sent (the field's
2-byte length); the rest is ignored, as in DCMTK."""


def _identity_token(identity: UserIdentity | None) -> bytes:
    """The Kerberos ticket, SAML assertion or JWT of ``identity``, read from its file now
    (b"" for the other kinds). Raises :class:`UsageError` for a file that cannot be read
    or is empty."""
    if identity is None or identity.kind in (
        IdentityKind.USERNAME,
        IdentityKind.USERNAME_PASSCODE,
    ):
        return b""
    try:
        with open(identity.primary, "rb") as handle:
            token = handle.read(IDENTITY_FILE_LIMIT)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise UsageError(
            f"Unable to open Kerberos, SAML or JWT file: {identity.primary}: {reason}"
        ) from None
    if not token:
        raise UsageError(
            f"Unable to read Kerberos, SAML or JWT info from file: {identity.primary}: File empty?"
        )
    return token


def _identity_item(identity: UserIdentity, token: bytes) -> bytes:
    """The user identity sub-item for ``identity``; ``token`` is the content of its
    Kerberos, SAML or JWT file (see :func:`_identity_token`).

    A user name and passcode identity with an empty passcode sends an empty secondary
    field, as DCMTK's ``-epw`` does."""
    secondary = b""
    if identity.kind in (IdentityKind.USERNAME, IdentityKind.USERNAME_PASSCODE):
        primary = identity.primary.encode("utf-8")
        if identity.kind is IdentityKind.USERNAME_PASSCODE:
            secondary = identity.passcode.encode("utf-8")
    else:
        primary = token
    if len(primary) > _ITEM_LIMIT or len(secondary) > _ITEM_LIMIT:
        raise UsageError("user identity too long for an A-ASSOCIATE-RQ: at most 65535 bytes")
    value = b"".join(
        (
            bytes((int(identity.kind), identity.positive_response)),
            len(primary).to_bytes(2, "big"),
            primary,
            len(secondary).to_bytes(2, "big"),
            secondary,
        )
    )
    return _item(_USER_IDENTITY_RQ, value, "user identity item")


_APPLICATION_CONTEXT_ITEM = _item(_APPLICATION_CONTEXT, APPLICATION_CONTEXT.encode("ascii"))
_IMPLEMENTATION_ITEMS = _item(
    _IMPLEMENTATION_CLASS, IMPLEMENTATION_CLASS_UID.encode("ascii")
) + _item(_IMPLEMENTATION_VERSION, IMPLEMENTATION_VERSION_NAME.encode("ascii"))


# -- the answer ----------------------------------------------------------------------


class _Malformed(Exception):
    """Why a received PDU cannot be read; becomes a :class:`ProtocolError`."""


def decode_associate_ac(pdu: bytes) -> Negotiated:
    """Decode a whole A-ASSOCIATE-AC PDU (header included).

    Only what :class:`Negotiated` holds is read: the presentation context results and
    the maximum length, implementation and user identity sub-items. Items and
    sub-items of other types are skipped; the called and calling AE titles and the
    application context name, which only echo the request, are not checked. Raises
    :class:`ProtocolError` ("malformed A-ASSOCIATE-AC: ...") for a PDU that cannot be
    read: truncated, a length running past its container, a sub-item of the wrong size.
    """
    try:
        return _decode_ac(pdu)
    except _Malformed as exc:
        raise ProtocolError(f"malformed A-ASSOCIATE-AC: {exc}") from None


def _decode_ac(pdu: bytes) -> Negotiated:
    _check_header(pdu, ASSOCIATE_AC, _FIXED_LENGTH)
    results: dict[int, tuple[int, str]] = {}
    max_pdu, class_uid, version = 0, "", ""
    identity: bytes | None = None
    for item_type, start, end in _items(pdu, _FIXED_LENGTH, len(pdu), "A-ASSOCIATE-AC"):
        if item_type == _CONTEXT_AC:
            if end - start < 4:
                raise _Malformed(f"presentation context item of {end - start} bytes")
            syntax = ""
            for sub_type, sub_start, sub_end in _items(
                pdu, start + 4, end, "presentation context item"
            ):
                if sub_type == _TRANSFER_SYNTAX and not syntax:
                    syntax = _uid_text(pdu[sub_start:sub_end])
            results[pdu[start]] = (pdu[start + 2], syntax)
        elif item_type == _USER_INFORMATION:
            for sub_type, sub_start, sub_end in _items(pdu, start, end, "user information"):
                value = pdu[sub_start:sub_end]
                if sub_type == _MAXIMUM_LENGTH:
                    if len(value) != 4:
                        raise _Malformed(f"maximum length sub-item of {len(value)} bytes")
                    max_pdu = int.from_bytes(value, "big")
                elif sub_type == _IMPLEMENTATION_CLASS:
                    class_uid = _uid_text(value)
                elif sub_type == _IMPLEMENTATION_VERSION:
                    version = value.decode("ascii", "replace")
                elif sub_type == _USER_IDENTITY_AC:
                    size = int.from_bytes(value[:2], "big")
                    if len(value) < 2 or len(value) < 2 + size:
                        raise _Malformed(f"user identity sub-item of {len(value)} bytes")
                    identity = value[2 : 2 + size]
    return Negotiated(results, max_pdu, class_uid, version, identity)


def decode_associate_rj(pdu: bytes) -> tuple[int, int, int]:
    """Decode a whole A-ASSOCIATE-RJ PDU: (result, source, reason), as sent (see
    ``describe_reject``). Raises :class:`ProtocolError` ("malformed A-ASSOCIATE-RJ:
    ...") for one too short or whose length field does not match it."""
    try:
        _check_header(pdu, ASSOCIATE_RJ, 10)
    except _Malformed as exc:
        raise ProtocolError(f"malformed A-ASSOCIATE-RJ: {exc}") from None
    return pdu[7], pdu[8], pdu[9]


_REJECT_REASONS: dict[tuple[int, int], str] = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised",
    (2, 1): "no reason given",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


def describe_reject(result: int, source: int, reason: int) -> str:
    """Plain words for an A-ASSOCIATE-RJ, e.g. 'rejected-transient: local limit exceeded'."""
    kind = {1: "rejected-permanent", 2: "rejected-transient"}.get(result, f"result {result}")
    why = _REJECT_REASONS.get((source, reason), f"source {source}, reason {reason}")
    return f"association rejected ({kind}): {why}"


def _check_header(pdu: bytes, pdu_type: int, minimum: int) -> None:
    if len(pdu) < minimum:
        raise _Malformed(f"{len(pdu)} bytes, at least {minimum} expected")
    found, length = PDU_HEADER.unpack_from(pdu)
    if found != pdu_type:
        raise _Malformed(f"PDU type 0x{found:02X}")
    if length != len(pdu) - PDU_HEADER.size:
        raise _Malformed(f"PDU length {length} given, {len(pdu) - PDU_HEADER.size} present")


def _items(data: bytes, start: int, end: int, where: str) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of each item in ``data[start:end]``."""
    pos = start
    while pos < end:
        if end - pos < _ITEM.size:
            raise _Malformed(f"{where}: {end - pos} stray bytes at its end")
        item_type, length = _ITEM.unpack_from(data, pos)
        value = pos + _ITEM.size
        if length > end - value:
            raise _Malformed(
                f"{where}: item 0x{item_type:02X} of {length} bytes runs past the end"
                f" ({end - value} left)"
            )
        yield item_type, value, value + length
        pos = value + length


def _uid_text(value: bytes) -> str:
    """A received UID: without its padding (a trailing NUL, surrounding spaces); bytes
    outside ASCII become U+FFFD, so that such a UID matches none of ours."""
    return value.decode("ascii", "replace").rstrip("\0").strip()
