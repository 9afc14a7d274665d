"""Secrets and distributed jobs: what never goes through the broker, and how a worker
fills it in.

A job record and its task messages carry the TLS settings (file paths on the worker
hosts) and the user identity, but never a TLS key password or an identity password.
Each worker takes those from its own configuration (``tls_key_password`` and
``identity_password`` in its settings file, or ``DISPATCH_TLS_KEY_PASSWORD`` and
``DISPATCH_IDENTITY_PASSWORD``; see :mod:`dispatch.jobs.config`).

``dispatch submit`` with a broker therefore refuses ``+pw`` and ``-pwd``: the password
would not reach the workers, and silently sending without it is worse than stopping.
Without a broker (the embedded mode) the job never leaves the process, and both work.
"""

from __future__ import annotations

from dataclasses import replace

from dispatch.errors import UsageError
from dispatch.jobs.config import JobsConfig
from dispatch.jobs.model import JobSpec
from dispatch.settings import AssociationSettings, IdentityKind

__all__ = ["refuse_secrets_for_broker", "with_worker_secrets"]


def refuse_secrets_for_broker(settings: AssociationSettings) -> None:
    """Raise :class:`UsageError` when ``settings`` hold a password that a job sent
    through the broker would have to carry (``+pw``, ``-pwd``)."""
    tls = settings.tls
    if tls is not None and tls.key_password:
        raise UsageError(
            "--use-passwd: key passwords are not sent through the broker; set"
            " DISPATCH_TLS_KEY_PASSWORD (or tls_key_password in the settings file) on the"
            " workers instead"
        )
    identity = settings.identity
    if identity is not None and identity.passcode:
        raise UsageError(
            "--password: identity passwords are not sent through the broker; give --user"
            " alone and set DISPATCH_IDENTITY_PASSWORD (or identity_password in the"
            " settings file) on the workers instead"
        )


def with_worker_secrets(spec: JobSpec, config: JobsConfig) -> JobSpec:
    """``spec`` (as read from the job record) with this worker's secrets filled in.

    The TLS key password is the worker's ``tls_key_password`` when set; without one a
    worker never prompts, and an encrypted key fails with a message naming the
    setting. A user name identity (``-usr``) is sent with the worker's
    ``identity_password`` as a user name and passcode identity when one is set.
    """
    settings = spec.settings
    tls, identity = settings.tls, settings.identity
    if tls is not None:
        password = config.tls_key_password or tls.key_password
        tls = replace(tls, key_password=password, prompt_password=False)
    if identity is not None and identity.kind is IdentityKind.USERNAME and config.identity_password:
        identity = replace(
            identity, kind=IdentityKind.USERNAME_PASSCODE, passcode=config.identity_password
        )
    if tls is settings.tls and identity is settings.identity:
        return spec
    return replace(spec, settings=replace(settings, tls=tls, identity=identity))
