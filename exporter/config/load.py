"""Loading the settings: the YAML file beneath the `DEVIN_EXPORTER_*` environment, every
problem of both reported at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from exporter.config.errors import (
    ConfigError,
    Problem,
    describe,
    did_you_mean,
    validation_problems,
    yaml_reason,
)
from exporter.config.settings import ENV_PREFIX, Settings

CONFIG_ENV = "DEVIN_EXPORTER_CONFIG"


def config_path_from_env(explicit: Path | None) -> Path | None:
    """The config file: `--config` if given, else `$DEVIN_EXPORTER_CONFIG`, else none."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else None


class _YamlSource(YamlConfigSettingsSource):
    """pydantic-settings' YAML source, with errors that name the file and say what is wrong."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        path = Path(str(file_path))
        try:
            raw = super()._read_file(file_path)
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text") from None
        except RecursionError:
            raise ConfigError(f"config file {path} is nested too deeply") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML{yaml_reason(err)}") from None
        except OSError as err:
            raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
        except (ValueError, TypeError, IndexError, OverflowError):
            # Tagged scalars such as `!!int devin` fail in PyYAML's constructors with plain
            # Python errors rather than YAMLError.
            raise ConfigError(
                f"config file {path} is not valid YAML: a tagged value is wrong"
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys at the top level")
        if not all(isinstance(key, str) for key in raw):
            raise ConfigError(f"config file {path}: top-level keys must be strings")
        return raw


def _environment_problems() -> list[Problem]:
    """A mistyped DEVIN_EXPORTER_* variable is an error, as a mistyped file key is."""
    sections = [name.upper() for name in Settings.model_fields]
    problems = []
    for variable in sorted(os.environ):
        if not variable.startswith(ENV_PREFIX) or variable == CONFIG_ENV:
            continue
        section = variable.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if section not in sections:
            hint = did_you_mean(section, sections, spell=lambda s: f"{ENV_PREFIX}{s}")
            problems.append((variable, f"not a known setting{hint}"))
    return problems


def load_settings(path: Path | None, **overrides: Any) -> Settings:
    """Read and validate the settings; raises ConfigError naming the file and every key
    that is wrong (unknown variables, unknown keys, bad values, unreadable key files) at
    once. Only a file that cannot be read or parsed stops the check short."""
    source = f"{path} (or its {ENV_PREFIX}* environment overrides)" if path else "environment"
    problems = _environment_problems()

    def failed(first_line: str | None = None) -> ConfigError:
        lines = [first_line] if first_line else []
        if problems:
            lines.append(describe(problems, source))
        return ConfigError("\n".join(lines))

    if path is not None and not path.is_file():
        # The YAML source skips a file that is not there; a named config must exist.
        reason = "not a file" if path.exists() else "No such file or directory"
        raise failed(f"cannot read config file {path}: {reason}")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=path)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # Settings' own sources (arguments, then the environment) win over the file.
            first = super().settings_customise_sources(
                settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
            )
            return (*first, _YamlSource(settings_cls))

    try:
        settings = FileSettings(**overrides)
    except ConfigError as err:  # the file cannot be read or parsed
        raise failed(str(err)) from None
    except ValidationError as err:
        problems += validation_problems(err)
    except SettingsError as err:  # an environment override that is not valid JSON
        problems.append((f"{ENV_PREFIX}*", str(err)))
    else:
        if not problems:
            return settings
    raise failed()
