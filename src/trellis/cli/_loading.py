"""Find the application a command works on: ``module:attr`` or ``path/to/file.py[:attr]``."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from trellis.exceptions import TrellisError
from trellis.server import RUN_FROM_CLI_ENV

#: Attribute names tried, in order, when the target names none.
APP_NAMES = ("app", "application")
#: The application file used when no target is named (as ``trellis new`` lays a project out).
DEFAULT_APP_FILE = "app.py"
#: Factory names tried when no application object is found.
FACTORY_NAMES = ("create_app", "make_app")

TARGET_HELP = (
    "The application: module:attribute (myproject.web:app) or a file path (hello.py, "
    "src/site.py:app). The attribute defaults to app; module:create_app() calls a factory."
)


class AppLoadError(click.UsageError):
    """The target does not name an application (exit status 2, no traceback)."""


class AppImportError(click.ClickException):
    """The application's module raised an error while being imported (exit status 1)."""


@dataclass(frozen=True)
class LoadedApp:
    """An application found from a target, and how a new process would import it again."""

    app: Any
    module: str
    attr: str
    factory: bool
    path_entry: str

    @property
    def import_string(self) -> str:
        """``module:attr``, for uvicorn's reload and worker processes."""
        return f"{self.module}:{self.attr}"


def resolve_target(ctx: click.Context, target: str | None) -> str:
    """Return ``target``, else ``--app`` / ``TRELLIS_APP``, else ``app.py``; else fail."""
    if target:
        return target
    root = ctx.find_root()
    found = root.params.get("app") or os.environ.get("TRELLIS_APP") or default_target(ctx)
    if found:
        return str(found)
    raise click.UsageError(
        "No application given: pass TARGET (module:app or path/to/app.py), "
        f"set --app / the TRELLIS_APP environment variable, or run where {DEFAULT_APP_FILE} is.",
        ctx,
    )


def default_target(ctx: click.Context) -> str | None:
    """``app.py`` of the ``--app-dir`` (default: current) directory, if there is one."""
    path = Path(resolve_app_dir(ctx, None)) / DEFAULT_APP_FILE
    return str(path) if path.is_file() else None


def resolve_app_dir(ctx: click.Context, app_dir: str | None) -> str:
    """Return ``app_dir``, else the group's ``--app-dir``, else the current directory."""
    if app_dir is not None:
        return app_dir
    found = ctx.find_root().params.get("app_dir")
    return str(found) if found else "."


def split_target(target: str) -> tuple[str, str | None, bool]:
    """Split a target into ``(module or path, attribute or None, call it)``."""
    text = target.strip()
    if not text:
        raise AppLoadError("The application target is empty: use module:app or path/to/app.py.")
    where, sep, attr = text.rpartition(":")
    if not sep or not where or any(c in attr for c in "/\\") or attr.endswith(".py"):
        where, attr = text, ""  # no attribute (or a Windows drive letter)
    call = attr.endswith("()")
    if call:
        attr = attr[:-2]
    if attr and not all(part.isidentifier() for part in attr.split(".")):
        raise AppLoadError(
            f"{target!r}: {attr!r} is not an attribute name; write module:attribute, such as "
            "hello:app or mypackage:create_app()"
        )
    if call and not attr:
        raise AppLoadError(f"{target!r}: name the factory to call, as in module:create_app()")
    return where, attr or None, call


def _is_path(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where


def _module_from_path(where: str) -> tuple[str, Path]:
    """``pkg/sub/mod.py`` -> (``pkg.sub.mod``, the directory above ``pkg``)."""
    path = Path(where).resolve()
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            raise AppLoadError(
                f"{where!r} is a directory but not a Python package (no __init__.py)"
            )
        path = path / "__init__.py"
    if not path.is_file():
        raise AppLoadError(f"No such file: {where!r}")
    if path.suffix != ".py":
        raise AppLoadError(f"{where!r} is not a Python file (.py)")
    parts = [] if path.name == "__init__.py" else [path.stem]
    directory = path.parent
    if path.name == "__init__.py":
        parts.insert(0, directory.name)
        directory = directory.parent
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        directory = directory.parent
    if not all(part.isidentifier() for part in parts):
        raise AppLoadError(
            f"{where!r} cannot be imported: {'.'.join(parts)!r} is not a valid module name; "
            "rename the file with letters, digits and underscores only"
        )
    return ".".join(parts), directory


def load_app(target: str, app_dir: str = ".", *, factory: bool = False) -> LoadedApp:
    """Import the application named by ``target``.

    Args:
        target: ``module:attr``, ``module`` (attribute found automatically), ``file.py[:attr]``
            or ``module:factory()``.
        app_dir: Directory added to ``sys.path`` for a dotted module name.
        factory: Call the attribute (with no arguments) to get the application.

    Raises:
        AppLoadError: The module or attribute does not exist, or is not an ASGI application.
        AppImportError: Importing the module, or calling the factory, raised an error.
    """
    where, attr, call = split_target(target)
    if _is_path(where):
        module_name, directory = _module_from_path(where)
    else:
        module_name = where
        if not all(part.isidentifier() for part in module_name.split(".")):
            raise AppLoadError(
                f"{target!r} is neither a module name nor a .py file: use module:app "
                "(myproject.web:app) or path/to/app.py"
            )
        directory = Path(app_dir).resolve()
        if not directory.is_dir():
            raise AppLoadError(f"--app-dir {app_dir!r} is not a directory")
    entry = str(directory)
    if entry not in sys.path:
        sys.path.insert(0, entry)
    module = _import(module_name, entry)
    factory = factory or call
    if attr is None:
        attr, found, guessed_factory = _find_app(module, module_name)
        factory = factory or guessed_factory
    else:
        found = module
        for part in attr.split("."):
            try:
                found = getattr(found, part)
            except AttributeError:
                raise AppLoadError(
                    f"Module {module_name!r} has no attribute {attr!r}"
                    f"{_candidates_hint(module, module_name)}"
                ) from None
    app = _call_factory(found, f"{module_name}:{attr}") if factory else found
    _check_asgi(app, f"{module_name}:{attr}", factory)
    return LoadedApp(app=app, module=module_name, attr=attr, factory=factory, path_entry=entry)


def _import(module_name: str, entry: str) -> Any:
    # A module ending with app.run() must not start a server while it is being imported.
    previous = os.environ.get(RUN_FROM_CLI_ENV)
    os.environ[RUN_FROM_CLI_ENV] = "1"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise AppLoadError(
                f"Could not import {module_name!r}: there is no module named {missing!r} in "
                f"{entry} or on sys.path. Check the name, run from the project directory, or "
                "pass --app-dir."
            ) from None
        raise AppImportError(_import_failure(module_name, exc)) from None
    except TrellisError as exc:
        raise AppImportError(f"Could not load {module_name!r}: {exc}") from None
    except Exception as exc:
        raise AppImportError(_import_failure(module_name, exc)) from None
    finally:
        if previous is None:
            del os.environ[RUN_FROM_CLI_ENV]
        else:
            os.environ[RUN_FROM_CLI_ENV] = previous


def _import_failure(module_name: str, exc: BaseException) -> str:
    """The error and the traceback through the user's code (without importlib's frames)."""
    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list(
        [frame for frame in te.stack if _is_user_frame(frame.filename)]
    )
    detail = "".join(te.format()).rstrip()
    return f"Error while importing {module_name!r}:\n{detail}"


_IMPORTLIB_DIR = Path(importlib.__file__).parent


def _is_user_frame(filename: str) -> bool:
    path = Path(filename)
    return not (
        filename.startswith("<frozen ") or path == Path(__file__) or _IMPORTLIB_DIR in path.parents
    )


def _find_app(module: Any, module_name: str) -> tuple[str, Any, bool]:
    """Guess the application: ``app``, ``application``, the one ``App``, or a factory."""
    from trellis.app import App

    for name in APP_NAMES:
        value = getattr(module, name, None)
        if value is not None and not inspect.ismodule(value):
            return name, value, False
    apps = [name for name, value in vars(module).items() if isinstance(value, App)]
    if len(apps) == 1:
        return apps[0], getattr(module, apps[0]), False
    if len(apps) > 1:
        raise AppLoadError(
            f"Module {module_name!r} has several applications ({', '.join(sorted(apps))}); "
            f"name one, as in {module_name}:{sorted(apps)[0]}"
        )
    for name in FACTORY_NAMES:
        value = getattr(module, name, None)
        if callable(value):
            return name, value, True
    raise AppLoadError(
        f"No application found in module {module_name!r}: define app = App() in it, name the "
        f"application as {module_name}:NAME, or name a factory as {module_name}:create_app()"
    )


def _candidates_hint(module: Any, module_name: str) -> str:
    from trellis.app import App

    names = sorted(name for name, value in vars(module).items() if isinstance(value, App))
    names += [n for n in FACTORY_NAMES if callable(getattr(module, n, None))]
    if not names:
        return ""
    return f" (it has: {', '.join(f'{module_name}:{n}' for n in names)})"


def _call_factory(factory: Any, where: str) -> Any:
    if not callable(factory):
        raise AppLoadError(f"{where} is not callable, so it cannot be an application factory")
    try:
        signature = inspect.signature(factory)
        signature.bind()
    except TypeError:
        raise AppLoadError(
            f"The factory {where} needs arguments; Trellis calls it with none. Give its "
            "parameters defaults, or write a factory without parameters."
        ) from None
    except ValueError:  # no signature (a builtin): just try the call
        pass
    try:
        return factory()
    except TrellisError as exc:
        raise AppImportError(f"The factory {where}() failed: {exc}") from None
    except Exception as exc:
        raise AppImportError(_import_failure(f"{where}()", exc)) from None


def _check_asgi(app: Any, where: str, factory: bool) -> None:
    from trellis.app import App

    if isinstance(app, App):
        return
    if inspect.isclass(app) or not callable(app):
        kind = "a class" if inspect.isclass(app) else f"a {type(app).__name__}"
        raise AppLoadError(f"{where} is {kind}, not an ASGI application")
    call = app if inspect.isroutine(app) else type(app).__call__
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        return
    hint = (
        "; if it is a factory, pass --factory or write it as " + where + "()"
        if inspect.isfunction(app) and not factory
        else ""
    )
    raise AppLoadError(
        f"{where} is not an ASGI application (an async callable app(scope, receive, send)){hint}"
    )


def require_trellis_app(loaded: LoadedApp, command: str) -> Any:
    """Return the loaded app if it is a Trellis ``App``; else fail with a usage error."""
    from trellis.app import App

    if not isinstance(loaded.app, App):
        raise AppLoadError(
            f"{loaded.import_string} is an ASGI application but not a Trellis App; "
            f"`trellis {command}` needs a Trellis App"
        )
    return loaded.app


def app_options(fn: Any) -> Any:
    """Add ``TARGET``, ``--app-dir`` and ``--factory`` to a command that loads the app."""
    fn = click.option(
        "--factory",
        is_flag=True,
        help="TARGET names a factory: call it (without arguments) to get the application.",
    )(fn)
    fn = click.option(
        "--app-dir",
        metavar="DIR",
        type=click.Path(file_okay=False),
        default=None,
        help="Directory to import a dotted TARGET from (default: the current directory).",
    )(fn)
    fn = click.argument("target", required=False, metavar="[TARGET]")(fn)
    return fn


def load_from_options(
    ctx: click.Context, target: str | None, app_dir: str | None, factory: bool
) -> LoadedApp:
    """Resolve the target from the command line or environment, then load it."""
    return load_app(resolve_target(ctx, target), resolve_app_dir(ctx, app_dir), factory=factory)
