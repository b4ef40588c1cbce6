"""Where settings come from: arguments, variables, ``*_FILE`` files, the secrets folder, the
profile; and a record of which source supplied each setting (``mercato config show``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from mercato.config.profiles import PROFILES, Profile
from mercato.platform.compat import ForwardingSource

PREFIX = "MERCATO_"


class Source(StrEnum):
    """Where a setting's value came from."""

    ARGUMENT = "argument"
    ENV = "env"
    FILE = "file"
    SECRETS_DIR = "secrets-dir"
    PROFILE = "profile"
    DEFAULT = "default"


_SOURCES: ContextVar[dict[str, Source] | None] = ContextVar(
    "mercato_settings_sources", default=None
)


@contextmanager
def recording() -> Iterator[dict[str, Source]]:
    """Within it, the sources note in the mapping it yields which of them supplied a setting."""
    recorded: dict[str, Source] = {}
    token = _SOURCES.set(recorded)
    try:
        yield recorded
    finally:
        _SOURCES.reset(token)


class ConfigurationError(ValueError):
    """The settings cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, profile: str, problems: list[str]) -> None:
        self.profile = profile
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid configuration for profile {profile!r}:\n{lines}")


def env_name(field: str) -> str:
    """The environment variable of a setting: ``token_secret`` -> ``MERCATO_TOKEN_SECRET``."""
    return PREFIX + field.upper()


def _environ() -> dict[str, str]:
    # variable names are case-insensitive, as in pydantic-settings' own environment source
    return {key.upper(): value for key, value in os.environ.items()}


def _read_secret(path: Path, *, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigurationError(
            _environ().get("MERCATO_ENV", "dev"), [f"{what}: cannot read {path}: {exc.strerror}"]
        ) from None


class _FileSource(PydanticBaseSettingsSource):
    """Shared parts of the two file sources: complex values (dicts) are JSON, like variables."""

    source: ClassVar[Source]

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # values are looked up all at once in __call__

    def _found(self) -> dict[str, str]:
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        found = self._found()
        return {
            name: self.prepare_field_value(name, self.settings_cls.model_fields[name], value, False)
            for name, value in found.items()
        }


class FileVariableSource(_FileSource):
    """``MERCATO_<NAME>_FILE=/path``: the setting is the content of that file."""

    source = Source.FILE

    def _found(self) -> dict[str, str]:
        environ = _environ()
        found = {}
        both = []
        for name in self.settings_cls.model_fields:
            path = environ.get(env_name(name) + "_FILE")
            if path:
                found[name] = _read_secret(Path(path), what=env_name(name) + "_FILE")
                if env_name(name) in environ:
                    both.append(f"set {env_name(name)} or {env_name(name)}_FILE, not both")
        if both:
            raise ConfigurationError(environ.get("MERCATO_ENV", "dev"), both)
        return found


class SecretsDirSource(_FileSource):
    """Files in ``MERCATO_SECRETS_DIR`` named after a setting (``token_secret``) or its variable."""

    source = Source.SECRETS_DIR

    def _found(self) -> dict[str, str]:
        folder = _environ().get("MERCATO_SECRETS_DIR")
        if not folder:
            return {}
        root = Path(folder)
        if not root.is_dir():
            raise ConfigurationError(
                _environ().get("MERCATO_ENV", "dev"),
                [f"MERCATO_SECRETS_DIR: {folder} is not a folder"],
            )
        found = {}
        for name in self.settings_cls.model_fields:
            for candidate in (root / name, root / env_name(name)):
                if candidate.is_file():
                    found[name] = _read_secret(candidate, what=f"secret {candidate.name}")
                    break
        return found


class ProfileSource(PydanticBaseSettingsSource):
    """The defaults of the profile that the higher-priority sources selected."""

    source = Source.PROFILE

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        chosen = self.current_state.get("env", Profile.DEV)
        try:
            profile = Profile(str(chosen).lower())
        except ValueError:
            return {}  # the field validator reports the unknown profile
        return dict(PROFILES[profile])


class Recorded(ForwardingSource):
    """Wraps a source and notes which settings it supplied first (sources run by priority)."""

    def __init__(self, inner: PydanticBaseSettingsSource, source: Source) -> None:
        super().__init__(inner)
        self.source = source

    def __call__(self) -> dict[str, Any]:
        values = self.inner()
        recorded = _SOURCES.get()
        if recorded is not None:
            for key in values:
                recorded.setdefault(key, self.source)
        return values
