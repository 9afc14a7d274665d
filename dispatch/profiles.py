"""DCMTK's association negotiation profile files (storescu ``-xf FILE PROFILE``).

The format, as DCMTK reads it::

    [[TransferSyntaxes]]          mandatory: labelled transfer syntax lists
    [Uncompressed]
    TransferSyntax1 = LittleEndianExplicit
    [[PresentationContexts]]      mandatory: labelled presentation context lists
    [MyContexts]
    PresentationContext1 = CTImageStorage\\Uncompressed
    [[SCPSCURoleSelection]]       optional: SOP class \\ SCU | SCP | BOTH
    [[ExtendedNegotiation]]       optional: SOP class \\ hex data
    [[Profiles]]                  mandatory: PresentationContexts (required),
    [Default]                     SCPSCURoleSelection, ExtendedNegotiation
    PresentationContexts = MyContexts

Rules reproduced from DCMTK: ``#`` starts a comment only in column 1; a line starting
with white space continues the previous value; section names and keys are
case-insensitive; labels and profile names are compared upper-cased with white space
removed; numbered keys are read 1, 2, 3... up to the first gap (DCMTK stops there
silently; a warning says so here); values are DCMTK names (see
:mod:`dispatch.dcmtk_names`) or UIDs; at most 128 contexts per list; one role and one
extended negotiation item per SOP class, and only for classes of the profile's
contexts. Like DCMTK, the whole file is checked when it is read.

Every problem raises :class:`~dispatch.errors.UsageError` whose message names the file,
the section and the key.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from dispatch.dcmtk_names import uid_for_name
from dispatch.errors import UsageError
from dispatch.settings import ExtendedNegotiation, PresentationContext, RoleSelection
from dispatch.shipped import SHIPPED, shipped_file

__all__ = ["Profile", "ProfileFile", "load_profile"]

log = logging.getLogger("dispatch.profiles")

MAX_CONTEXTS = 128
"""Presentation context ids are odd numbers 1..255."""
MAX_EXTENDED_BYTES = 1024
"""The longest extended negotiation data a profile may give (DCMTK's limit)."""

_TRANSFER_SYNTAXES = "TRANSFERSYNTAXES"
_CONTEXTS = "PRESENTATIONCONTEXTS"
_ROLES = "SCPSCUROLESELECTION"
_EXTENDED = "EXTENDEDNEGOTIATION"
_PROFILES = "PROFILES"

#: How sections are spelled in messages.
_SPELLED = {
    _TRANSFER_SYNTAXES: "TransferSyntaxes",
    _CONTEXTS: "PresentationContexts",
    _ROLES: "SCPSCURoleSelection",
    _EXTENDED: "ExtendedNegotiation",
    _PROFILES: "Profiles",
}

_UID = re.compile(r"[0-9]+(\.[0-9]+)*\Z")
_HEX = re.compile(r"([0-9A-Fa-f]{2})*\Z")
_Item = TypeVar("_Item", RoleSelection, ExtendedNegotiation)

_ROLE_FLAGS = {"SCU": (True, False), "SCP": (False, True), "BOTH": (True, True)}


@dataclass(frozen=True)
class Profile:
    """One profile of a file: what an A-ASSOCIATE-RQ proposes.

    ``contexts`` carry ids 1, 3, 5... in list order; ``roles`` holds, as DCMTK proposes
    them, one item per context whose SOP class has a role, in context order (a class
    proposed in three contexts has three equal items); ``extended`` is in list order.
    """

    name: str
    contexts: tuple[PresentationContext, ...]
    roles: tuple[RoleSelection, ...] = ()
    extended: tuple[ExtendedNegotiation, ...] = ()


def mangle(label: str) -> str:
    """A label or profile name as DCMTK compares it: upper-cased, white space removed."""
    return "".join(label.split()).upper()


@dataclass
class _Entry:
    key: str
    """As written (for messages)."""
    value: str
    line: int


@dataclass
class _Block:
    """A ``[label]`` and its entries, keys mangled."""

    label: str
    """As written (for messages)."""
    entries: dict[str, _Entry]


class _Reader:
    """The file as DCMTK's OFConfigFile sees it: ``[[section]]`` > ``[block]`` > entries."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.sections: dict[str, dict[str, _Block]] = {}
        self.section_names: dict[str, str] = {}
        section: dict[str, _Block] | None = None
        block: _Block | None = None
        entry: _Entry | None = None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.rstrip()
            if not line.strip() or line.startswith("#"):
                continue
            if line[0].isspace():
                # A continuation line: DCMTK appends it to the previous value.
                if entry is None:
                    self.fail(f"line {number}", "continuation line without a preceding entry")
                entry.value += "\n" + line.strip()
                continue
            entry = None
            stripped = line.strip()
            if stripped.startswith("[["):
                name = stripped.strip("[]")
                section = self.sections.setdefault(mangle(name), {})
                self.section_names.setdefault(mangle(name), name.strip())
                block = None
            elif stripped.startswith("["):
                if section is None:
                    self.fail(f"line {number}", f"[{stripped.strip('[]')}] outside a [[section]]")
                label = stripped.strip("[]").strip()
                block = section.setdefault(mangle(label), _Block(label, {}))
            else:
                key, sep, value = stripped.partition("=")
                if not sep:
                    self.fail(f"line {number}", f"expected KEY = VALUE, found {stripped!r}")
                if block is None:
                    self.fail(f"line {number}", f"{key.strip()} outside a [label]")
                entry = _Entry(key.strip(), value.strip(), number)
                block.entries[mangle(key)] = entry

    def fail(self, where: str, problem: str) -> NoReturn:
        raise UsageError(f"{self.path}: {where}: {problem}")

    def section(self, name: str, mandatory: bool) -> dict[str, _Block]:
        found = self.sections.get(name)
        if found is None:
            if mandatory:
                raise UsageError(f"{self.path}: mandatory section [[{_SPELLED[name]}]] is missing")
            return {}
        return found

    def numbered(self, section: str, block: _Block, prefix: str) -> Iterator[_Entry]:
        """Entries PREFIX1, PREFIX2... up to the first gap (warned about, as DCMTK
        ignores what follows silently)."""
        number = 1
        while (entry := block.entries.get(f"{prefix}{number}")) is not None:
            yield entry
            number += 1
        later = sorted(
            int(key[len(prefix) :])
            for key in block.entries
            if key.startswith(prefix) and key[len(prefix) :].isdigit()
            and int(key[len(prefix) :]) > number
        )  # fmt: skip
        if later:
            log.warning(
                "%s: [[%s]] [%s]: no %s%d; %s ignored (DCMTK stops at the first gap)",
                self.path,
                _SPELLED[section],
                block.label,
                _spell_prefix(prefix),
                number,
                ", ".join(f"{_spell_prefix(prefix)}{n}" for n in later),
            )


def _spell_prefix(prefix: str) -> str:
    return {
        "TRANSFERSYNTAX": "TransferSyntax",
        "PRESENTATIONCONTEXT": "PresentationContext",
        "ROLE": "Role",
        "EXTENDEDNEGOTIATION": "ExtendedNegotiation",
    }[prefix]


def _is_uid(value: str) -> bool:
    return len(value) <= 64 and _UID.match(value) is not None


class ProfileFile:
    """A whole profile file, read and checked; :meth:`profile` picks one profile."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        reader = _Reader(path, text)
        self._reader = reader
        # DCMTK checks the mandatory sections before anything else.
        for name in (_TRANSFER_SYNTAXES, _CONTEXTS, _PROFILES):
            reader.section(name, mandatory=True)
        self._syntaxes = self._read_syntaxes()
        self._context_lists = self._read_contexts()
        self._role_lists = self._read_roles()
        self._extended_lists = self._read_extended()
        self._profiles = self._read_profiles()

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ProfileFile:
        """Read and check ``path``; :class:`UsageError` if unreadable or invalid.

        A bare name of a shipped file (``storescu.cfg``) that is not a file in the
        working directory is the shipped one (:mod:`dispatch.shipped`)."""
        name = os.fspath(path)
        shipped = shipped_file(name)
        if shipped is not None and not os.path.exists(name):
            name = str(shipped)
        try:
            with open(name, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            where = shipped_file(SHIPPED[0])
            raise UsageError(
                f"cannot read profile file {name}: {exc.strerror or exc}"
                f" (the shipped profiles: -xf {SHIPPED[0]} PROFILE, in {where})"
            ) from None
        return cls(name, data.decode("utf-8", "replace"))

    @property
    def profile_names(self) -> tuple[str, ...]:
        """The profiles of the file, as written."""
        return tuple(profile.name for profile in self._profiles.values())

    def profile(self, name: str) -> Profile:
        """The profile called ``name`` (compared as DCMTK does); :class:`UsageError`
        if there is none."""
        found = self._profiles.get(mangle(name))
        if found is None:
            known = ", ".join(self.profile_names) or "none"
            raise UsageError(f"{self.path}: unknown profile {name!r} (profiles: {known})")
        return found

    # -- sections ----------------------------------------------------------------------

    def _where(self, section: str, block: _Block, entry: _Entry | str) -> str:
        key = entry if isinstance(entry, str) else entry.key
        return f"{self.path}: [[{_SPELLED[section]}]] [{block.label}] {key}"

    def _fail(self, section: str, block: _Block, entry: _Entry | str, problem: str) -> NoReturn:
        raise UsageError(f"{self._where(section, block, entry)}: {problem}")

    def _split(self, section: str, block: _Block, entry: _Entry) -> tuple[str, str]:
        """``SOPClass\\value`` -> (SOP class UID, value); at the first backslash."""
        name, sep, rest = entry.value.partition("\\")
        if not sep:
            self._fail(section, block, entry, f"missing '\\' in {entry.value!r}")
        name = name.strip()
        uid = uid_for_name(name, transfer_syntax=False)
        if uid is None:
            if not _is_uid(name):
                self._fail(
                    section, block, entry,
                    f"not a known SOP class name or a valid UID: {name!r}",
                )  # fmt: skip
            uid = name
        return uid, rest.strip()

    def _read_syntaxes(self) -> dict[str, tuple[str, ...]]:
        lists: dict[str, tuple[str, ...]] = {}
        for label, block in self._reader.section(_TRANSFER_SYNTAXES, True).items():
            syntaxes: list[str] = []
            for entry in self._reader.numbered(_TRANSFER_SYNTAXES, block, "TRANSFERSYNTAX"):
                value = entry.value
                uid = uid_for_name(value, transfer_syntax=True)
                if uid is None:
                    if not _is_uid(value):
                        self._fail(
                            _TRANSFER_SYNTAXES, block, entry,
                            f"not a DCMTK transfer syntax name or a valid UID: {value!r}",
                        )  # fmt: skip
                    uid = value
                syntaxes.append(uid)
            if not syntaxes:
                self._fail(_TRANSFER_SYNTAXES, block, "TransferSyntax1", "missing")
            lists[label] = tuple(syntaxes)
        return lists

    def _too_long(self, section: str, block: _Block, count: int, what: str) -> None:
        if count > MAX_CONTEXTS:
            self._fail(
                section, block, f"{what}{MAX_CONTEXTS + 1}",
                f"list too long: {count} entries, at most {MAX_CONTEXTS} allowed",
            )  # fmt: skip

    def _read_contexts(self) -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
        lists: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
        for label, block in self._reader.section(_CONTEXTS, True).items():
            contexts: list[tuple[str, tuple[str, ...]]] = []
            for entry in self._reader.numbered(_CONTEXTS, block, "PRESENTATIONCONTEXT"):
                uid, syntax_label = self._split(_CONTEXTS, block, entry)
                syntaxes = self._syntaxes.get(mangle(syntax_label))
                if syntaxes is None:
                    self._fail(
                        _CONTEXTS, block, entry,
                        f"transfer syntax list [{syntax_label}] is not defined"
                        " in [[TransferSyntaxes]]",
                    )  # fmt: skip
                contexts.append((uid, syntaxes))
            self._too_long(_CONTEXTS, block, len(contexts), "PresentationContext")
            if not contexts:
                self._fail(_CONTEXTS, block, "PresentationContext1", "missing")
            lists[label] = tuple(contexts)
        return lists

    def _read_roles(self) -> dict[str, tuple[tuple[RoleSelection, _Entry], ...]]:
        lists: dict[str, tuple[tuple[RoleSelection, _Entry], ...]] = {}
        for label, block in self._reader.section(_ROLES, False).items():
            roles: list[tuple[RoleSelection, _Entry]] = []
            seen: set[str] = set()
            for entry in self._reader.numbered(_ROLES, block, "ROLE"):
                uid, role = self._split(_ROLES, block, entry)
                flags = _ROLE_FLAGS.get(role.upper())
                if flags is None:
                    self._fail(_ROLES, block, entry, f"role must be SCU, SCP or BOTH, not {role!r}")
                if uid in seen:
                    self._fail(_ROLES, block, entry, f"second role selection for {uid}")
                seen.add(uid)
                roles.append((RoleSelection(uid, *flags), entry))
            self._too_long(_ROLES, block, len(roles), "Role")
            lists[label] = tuple(roles)
        return lists

    def _read_extended(self) -> dict[str, tuple[tuple[ExtendedNegotiation, _Entry], ...]]:
        lists: dict[str, tuple[tuple[ExtendedNegotiation, _Entry], ...]] = {}
        for label, block in self._reader.section(_EXTENDED, False).items():
            items: list[tuple[ExtendedNegotiation, _Entry]] = []
            seen: set[str] = set()
            for entry in self._reader.numbered(_EXTENDED, block, "EXTENDEDNEGOTIATION"):
                uid, text = self._split(_EXTENDED, block, entry)
                if not text or not _HEX.match(text):
                    self._fail(
                        _EXTENDED, block, entry,
                        f"data must be an even number of hexadecimal digits, not {text!r}",
                    )  # fmt: skip
                data = bytes.fromhex(text)
                if len(data) > MAX_EXTENDED_BYTES:
                    self._fail(
                        _EXTENDED, block, entry,
                        f"data too long: {len(data)} bytes, at most {MAX_EXTENDED_BYTES}",
                    )  # fmt: skip
                if uid in seen:
                    self._fail(_EXTENDED, block, entry, f"second extended negotiation for {uid}")
                seen.add(uid)
                items.append((ExtendedNegotiation(uid, data), entry))
            self._too_long(_EXTENDED, block, len(items), "ExtendedNegotiation")
            lists[label] = tuple(items)
        return lists

    def _read_profiles(self) -> dict[str, Profile]:
        profiles: dict[str, Profile] = {}
        for label, block in self._reader.section(_PROFILES, True).items():
            entry = block.entries.get("PRESENTATIONCONTEXTS")
            if entry is None:
                self._fail(_PROFILES, block, "PresentationContexts", "missing")
            found = self._context_lists.get(mangle(entry.value))
            if found is None:
                self._fail(
                    _PROFILES, block, entry,
                    f"presentation context list [{entry.value}] is not defined"
                    " in [[PresentationContexts]]",
                )  # fmt: skip
            contexts = tuple(
                PresentationContext(2 * index + 1, uid, syntaxes)
                for index, (uid, syntaxes) in enumerate(found)
            )
            classes = {uid for uid, _ in found}
            roles = self._referenced(block, "SCPSCUROLESELECTION", _ROLES, self._role_lists,
                                     classes, entry.value)  # fmt: skip
            extended = self._referenced(block, "EXTENDEDNEGOTIATION", _EXTENDED,
                                        self._extended_lists, classes, entry.value)  # fmt: skip
            # DCMTK puts a role item on the wire for every context of the class, in
            # context order; so do we, for the same A-ASSOCIATE-RQ.
            by_class = {role.sop_class: role for role in roles}
            per_context = tuple(
                by_class[c.abstract_syntax] for c in contexts if c.abstract_syntax in by_class
            )
            profiles[label] = Profile(block.label, contexts, per_context, extended)
        return profiles

    def _referenced(
        self,
        block: _Block,
        key: str,
        section: str,
        lists: Mapping[str, tuple[tuple[_Item, _Entry], ...]],
        classes: set[str],
        contexts_label: str,
    ) -> tuple[_Item, ...]:
        """The role or extended negotiation list a profile names, checked against the
        SOP classes of its presentation contexts."""
        entry = block.entries.get(key)
        if entry is None:
            return ()
        found = lists.get(mangle(entry.value))
        if found is None:
            self._fail(
                _PROFILES, block, entry,
                f"list [{entry.value}] is not defined in [[{_SPELLED[section]}]]",
            )  # fmt: skip
        for item, item_entry in found:
            if item.sop_class not in classes:
                list_block = self._reader.sections[section][mangle(entry.value)]
                self._fail(
                    section, list_block, item_entry,
                    f"SOP class {item.sop_class} is not in presentation context list"
                    f" [{contexts_label}] of profile [{block.label}]",
                )  # fmt: skip
        return tuple(item for item, _ in found)


def load_profile(path: str | os.PathLike[str], name: str) -> Profile:
    """Read profile file ``path`` (checking all of it, as DCMTK does) and return the
    profile ``name``. Raises :class:`UsageError` naming the file, section and key."""
    return ProfileFile.read(path).profile(name)
