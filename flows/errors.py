"""The exception base of the project.

What a resident sees is a translation key, never English text from an exception: every error
carries a ``translation_key`` that the UI looks up in the locale catalogs (see
``assets/locales``). Packages derive their own bases from :class:`KioskError`.
"""

from __future__ import annotations


class KioskError(Exception):
    """Base of every error the project raises on purpose."""

    translation_key: str = "error.generic"

    def __init__(self, message: str = "", *, translation_key: str | None = None) -> None:
        super().__init__(message or self.translation_key)
        if translation_key is not None:
            self.translation_key = translation_key


class ConfigError(KioskError):
    """A configuration file is wrong; the message names the file, the key and what is allowed."""

    translation_key = "error.config"


class DeviceError(KioskError):
    """A device failed; drivers derive their typed errors from this and chain the library's."""

    translation_key = "error.device"


class DeviceTimeout(DeviceError):
    """A device did not answer within its deadline."""

    translation_key = "error.device_timeout"


class DeviceOffline(DeviceError):
    """A device is unplugged, switched off or unreachable."""

    translation_key = "error.device_offline"


class ProtocolError(DeviceError):
    """A device answered something that does not follow its wire protocol."""

    translation_key = "error.device_protocol"


class ProviderError(KioskError):
    """A document provider (a government platform) could not answer."""

    translation_key = "error.provider.failed"


class ProviderUnavailable(ProviderError):
    """The platform is down or in maintenance; the service is unavailable for now."""

    translation_key = "error.provider.unavailable"


class RecordNotFound(ProviderError):
    """The platform has no such record for this resident."""

    translation_key = "error.provider.no_record"
