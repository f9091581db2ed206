"""Serve an application with uvicorn: ``App.run()`` and ``trellis run`` end up here.

``serve`` fills in what is not given from the application's settings (``server_host``,
``server_port``, ``server_graceful_timeout``, ``log_level``, ``log_format``, ``access_log``),
configures logging through ``trellis.logging`` so uvicorn's lines share Trellis's text or JSON
format, and runs uvicorn with uvloop and httptools when they are installed.

It binds the listening sockets itself and hands them to uvicorn, so one server, with one
process or several workers, can listen on several addresses at once: IPv4, IPv6 and Unix
sockets (``binds=["127.0.0.1:8000", "[::1]:8000", "unix:/run/web.sock"]``). On SIGTERM or
Ctrl+C it stops accepting connections at once, lets the requests in flight finish for up to
``graceful_timeout`` seconds, closes websockets with code 1012, runs the shut-down hooks and
exits.

Trellis reads ``X-Forwarded-*`` headers itself, from the proxies listed in the
``trusted_proxies`` setting, so uvicorn's own proxy-header handling is off by default.

Example:
    ```python
    from trellis import App
    from trellis.server import serve

    app = App()

    if __name__ == "__main__":
        serve(app, port=8080)  # the same as app.run(port=8080)
    ```
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import multiprocessing
import os
import re
import signal
import socket
import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    import uvicorn
    from uvicorn.supervisors.multiprocess import Multiprocess

    from trellis.config import Settings

__all__ = ["RUN_FROM_CLI_ENV", "cli_is_importing", "serve"]

RUN_FROM_CLI_ENV = "TRELLIS_RUN_FROM_CLI"
"""Set by the ``trellis`` command while it imports an application (and inherited by the worker
processes it starts): a ``serve()`` or ``app.run()`` reached during that import is skipped, so a
module that ends with ``app.run()`` can still be given to ``trellis run``."""


def cli_is_importing() -> bool:
    """Whether the ``trellis`` command (or a worker it started) is importing the application.

    ``serve()`` and ``app.run()`` do nothing then: the command serves the application itself.
    """
    return bool(os.environ.get(RUN_FROM_CLI_ENV))


def serve(
    app: Any,
    host: str | None = None,
    port: int | None = None,
    *,
    binds: Sequence[str] | None = None,
    reload: bool = False,
    workers: int = 1,
    uds: str | None = None,
    graceful_timeout: float | None = None,
    log_level: str | None = None,
    access_log: bool | None = None,
    log_format: str | None = None,
    proxy_headers: bool = False,
    root_path: str = "",
    **uvicorn_options: Any,
) -> None:
    """Serve ``app`` with uvicorn until interrupted (Ctrl+C, SIGTERM), then shut down gracefully.

    On SIGTERM or Ctrl+C the server stops accepting connections at once, lets the requests in
    flight finish for up to ``graceful_timeout`` seconds (then cuts them), closes websockets
    with code 1012, runs the application's shut-down hooks and exits with status 0.

    Args:
        app: The application (a Trellis ``App`` or any ASGI app), or an import string
            ``"module:attribute"``. ``reload`` and ``workers`` need the import string, because
            each new process imports the application itself.
        host: Address to bind. Default: the ``server_host`` setting (``127.0.0.1``).
        port: Port to listen on. Default: the ``server_port`` setting (``8000``).
        binds: Addresses to listen on, all at once, instead of ``host``, ``port`` and ``uds``:
            ``"127.0.0.1:8000"``, ``"[::1]:8000"``, ``"unix:/run/web.sock"``,
            ``"localhost:8000"`` (every address the name resolves to).
        reload: Restart when Python files change (development only).
        workers: Number of worker processes sharing the sockets; a worker that dies is
            replaced.
        uds: Listen on this Unix domain socket path instead of ``host`` and ``port``.
        graceful_timeout: Seconds the requests in flight get to finish on shut-down.
            Default: the ``server_graceful_timeout`` setting (30).
        log_level: Lowest level logged. Default: the ``log_level`` setting.
        access_log: Log one line per request. Default: the ``access_log`` setting.
        log_format: ``"text"`` or ``"json"``. Default: the ``log_format`` setting.
        proxy_headers: Let uvicorn rewrite the client address and scheme from
            ``X-Forwarded-*``. Leave off and list your proxies in the ``trusted_proxies``
            setting instead: Trellis then handles the headers itself.
        root_path: The path prefix the application is mounted under behind a proxy
            (``/api`` when the proxy forwards ``example.com/api/...``).
        **uvicorn_options: Any other ``uvicorn.Config`` option (``ssl_certfile``,
            ``timeout_keep_alive``, ``log_config`` to replace Trellis's logging ...).

    Raises:
        ConfigurationError: ``reload`` or ``workers`` was asked for with an application object
            instead of an import string; a bind address is malformed, or taken, or cannot be
            listened on; or building the app found a mistake (``App.build`` runs before the
            server takes the port).
        SystemExit: The application's start-up failed (in a worker, too); the exit status is
            3, and the reason has been logged.

    When the ``trellis`` command is importing the module (``trellis run hello.py`` for a file
    that ends with ``app.run()``), the call does nothing: the command serves the application
    itself.
    """
    if cli_is_importing():
        if multiprocessing.parent_process() is None:  # say it once, not in every worker
            sys.stderr.write(
                "trellis: ignoring app.run() while the trellis command loads the application;"
                ' put it under `if __name__ == "__main__":` to silence this\n'
            )
        return
    _serve(
        app,
        host,
        port,
        binds=binds,
        reload=reload,
        workers=workers,
        uds=uds,
        graceful_timeout=graceful_timeout,
        log_level=log_level,
        access_log=access_log,
        log_format=log_format,
        proxy_headers=proxy_headers,
        root_path=root_path,
        **uvicorn_options,
    )


def _serve(
    app: Any,
    host: str | None = None,
    port: int | None = None,
    *,
    binds: Sequence[str] | None = None,
    reload: bool = False,
    workers: int = 1,
    uds: str | None = None,
    graceful_timeout: float | None = None,
    log_level: str | None = None,
    access_log: bool | None = None,
    log_format: str | None = None,
    proxy_headers: bool = False,
    root_path: str = "",
    **uvicorn_options: Any,
) -> None:
    """``serve`` without the guard against being reached while the CLI imports the app."""
    import uvicorn

    from trellis.app import App
    from trellis.logging import configure_logging

    if workers < 1:
        raise ConfigurationError(f"workers={workers}: at least one worker is needed")
    if graceful_timeout is not None and graceful_timeout < 0:
        raise ConfigurationError(f"graceful_timeout={graceful_timeout}: use 0 or more seconds")
    if binds is not None and (host is not None or port is not None or uds is not None):
        raise ConfigurationError(
            "give the addresses either as binds or as host, port and uds, not both"
        )
    if binds is not None and not binds:
        raise ConfigurationError("binds is empty: give at least one address to listen on")
    if not isinstance(app, str) and (reload or workers > 1):
        what = "--reload" if reload else f"--workers {workers}"
        raise ConfigurationError(
            f"{'reload' if reload else 'several workers'} needs the application as an import "
            "string, because every new process imports it again: run "
            f"`trellis run module:app {what}` (or pass serve('module:app', ...))"
        )
    parsed = [_parse_bind(text) for text in binds] if binds is not None else None
    needed = (log_level, log_format, access_log, graceful_timeout)
    if None in needed or (parsed is None and None in (host, port)):
        settings: Settings | None = _settings_of(app)
    else:
        settings = None
    if settings is not None:
        host = settings.server_host if host is None else host
        port = settings.server_port if port is None else port
        log_level = settings.log_level if log_level is None else log_level
        log_format = settings.log_format if log_format is None else log_format
        access_log = settings.access_log if access_log is None else access_log
        if graceful_timeout is None:
            graceful_timeout = settings.server_graceful_timeout
    assert log_level is not None and log_format is not None and access_log is not None
    if log_format not in ("text", "json"):
        raise ConfigurationError(f"log_format={log_format!r}: use 'text' or 'json'")
    if parsed is None:
        assert host is not None and port is not None
        parsed = [_Bind(socket.AF_UNIX, uds, 0)] if uds is not None else [_host_bind(host, port)]
    if "log_config" not in uvicorn_options:
        uvicorn_options["log_config"] = configure_logging(
            log_level,
            "json" if log_format == "json" else "text",
            access_log,
            apply=False,
        )
    uvicorn_options.setdefault("loop", "auto")
    uvicorn_options.setdefault("http", "auto")
    # The Server header only tells attackers which server to target.
    uvicorn_options.setdefault("server_header", False)
    uvicorn_options["timeout_graceful_shutdown"] = graceful_timeout
    if isinstance(app, str):
        # uvicorn imports the module (in each worker): an app.run() at its end must not start a
        # second server there.
        os.environ[RUN_FROM_CLI_ENV] = "1"
    elif isinstance(app, App):
        # Report mistakes (clashing routes, a missing secret key ...) before taking the port,
        # as an exception rather than a log line.
        app.build()
        app.settings.check()
        # A Trellis app always speaks lifespan: a failed start-up must stop the server.
        uvicorn_options.setdefault("lifespan", "on")
    common = {
        "workers": workers,
        "log_level": log_level.lower(),
        "access_log": access_log,
        "proxy_headers": proxy_headers,
        "root_path": root_path,
        **uvicorn_options,
    }
    if reload:
        # uvicorn's reloader binds the one address itself and restarts the server process.
        if len(parsed) > 1:
            raise ConfigurationError(
                "--reload listens on one address; give one bind (or host and port) with it"
            )
        [only] = parsed
        where: dict[str, Any] = (
            {"uds": only.address}
            if only.family == socket.AF_UNIX
            else {"host": only.address, "port": only.port}
        )
        uvicorn.run(app, reload=True, **where, **common)
        return
    config = uvicorn.Config(app, **common)
    _run(config, parsed, workers)


# -- listening sockets ----------------------------------------------------------------------

_BIND_FORMS = "write HOST:PORT, [IPv6]:PORT or unix:PATH, such as 127.0.0.1:8000"
_IPV6_BIND = re.compile(r"\[([^\]]+)\]:(\d+)")


@dataclass(frozen=True, slots=True)
class _Bind:
    """One address to listen on: a host name or IP address and a port, or a socket path."""

    family: socket.AddressFamily  # AF_INET or AF_INET6 for literal addresses, AF_UNSPEC for names
    address: str  # the host or the Unix socket path
    port: int

    def __str__(self) -> str:
        if self.family == socket.AF_UNIX:
            return f"unix:{self.address}"
        if self.family == socket.AF_INET6:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


def _parse_bind(text: str) -> _Bind:
    """Read ``HOST:PORT``, ``[IPv6]:PORT`` or ``unix:PATH``; raise ConfigurationError if bad."""
    if text.startswith("unix:"):
        path = text.removeprefix("unix:")
        if not path:
            raise ConfigurationError(f"bind {text!r} has no socket path: {_BIND_FORMS}")
        return _Bind(socket.AF_UNIX, path, 0)
    if match := _IPV6_BIND.fullmatch(text):
        host, port_text = match.groups()
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigurationError(
                f"bind {text!r}: {host!r} is not an IPv6 address; {_BIND_FORMS}"
            ) from None
        return _Bind(socket.AF_INET6, host, _port(text, port_text))
    host, colon, port_text = text.rpartition(":")
    if not colon or not host or ":" in host or "[" in host:
        raise ConfigurationError(f"bind {text!r} is not an address: {_BIND_FORMS}")
    return _host_bind(host, _port(text, port_text))


def _port(text: str, port: str) -> int:
    if not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(f"bind {text!r}: the port must be a number from 0 to 65535")
    return int(port)


def _host_bind(host: str, port: int) -> _Bind:
    """The bind of ``--host`` and ``--port``: an IPv4 or IPv6 address, or a name to resolve."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_UNSPEC
    return _Bind(family, host, port)


def _listen(binds: Sequence[_Bind], backlog: int) -> tuple[list[socket.socket], dict[str, int]]:
    """Bind a socket for each address (several for a name that resolves to several), listening.

    They listen at once, before the application starts: a client that connects while it
    starts (a proxy retrying during a restart) waits in the backlog instead of being refused.
    Returns the sockets and the Unix socket files made, with their inode numbers. Raises
    ConfigurationError, with everything bound so far undone, when an address cannot be bound.
    """
    sockets: list[socket.socket] = []
    files: dict[str, int] = {}
    try:
        for bind in binds:
            if bind.family == socket.AF_UNIX:
                sock = _bind_unix(bind)
                sockets.append(sock)
                sock.listen(backlog)
                files[bind.address] = os.lstat(bind.address).st_ino
            else:
                bound = _bind_tcp(bind)
                sockets += bound
                for sock in bound:
                    sock.listen(backlog)
    except BaseException:
        _close(sockets, files)
        raise
    return sockets, files


def _close(sockets: Sequence[socket.socket], files: dict[str, int]) -> None:
    """Close the sockets and remove the socket files that are still ours."""
    for sock in sockets:
        sock.close()
    for path, inode in files.items():
        with contextlib.suppress(OSError):
            # Another server may have taken the path since: leave its socket alone.
            if os.lstat(path).st_ino == inode:
                os.unlink(path)


def _bind_tcp(bind: _Bind) -> list[socket.socket]:
    try:
        found = socket.getaddrinfo(
            bind.address, bind.port, bind.family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {bind}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    port = bind.port
    try:
        for family, _, _, _, sockaddr in dict.fromkeys(found):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # [::]:8000 and 0.0.0.0:8000 side by side, as asyncio and nginx do.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            # A name with several addresses and port 0: all on the port the first one got.
            address = (sockaddr[0], port, *sockaddr[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                raise ConfigurationError(_bind_failure(bind, exc)) from None
            port = sock.getsockname()[1]
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_unix(bind: _Bind) -> socket.socket:
    path = bind.address
    _remove_stale_socket(bind)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # Anyone who can reach the file may connect, as with uvicorn's --uds: restrict access
        # with the directory's permissions (see the deployment docs).
        os.chmod(path, 0o666)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(_bind_failure(bind, exc)) from None
    sock.set_inheritable(True)
    return sock


def _remove_stale_socket(bind: _Bind) -> None:
    """Remove a socket file left by a server that died; refuse to touch a live one or a file."""
    try:
        mode = os.lstat(bind.address).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigurationError(_bind_failure(bind, exc)) from None
    if not stat.S_ISSOCK(mode):
        raise ConfigurationError(
            f"cannot listen on {bind}: the path exists and is not a socket; remove it or "
            "choose another path"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(bind.address)
        except ConnectionRefusedError:  # nobody listens: left over
            os.unlink(bind.address)
            return
        except OSError as exc:
            raise ConfigurationError(_bind_failure(bind, exc)) from None
    raise ConfigurationError(
        f"cannot listen on {bind}: another server is listening on that socket; stop it or "
        "choose another path"
    )


def _bind_failure(bind: _Bind, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {bind}: the address is already in use (another server is "
            "running there?); stop it or choose another port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {bind}: no network interface of this machine has that address"
    return f"cannot listen on {bind}: {exc.strerror or exc}"


def _url(sock: socket.socket, scheme: str) -> str:
    if sock.family == socket.AF_UNIX:
        return f"unix socket {sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{host}]:{port}"
    return f"{scheme}://{host}:{port}"


# -- running --------------------------------------------------------------------------------

_STARTUP_FAILURE = 3  # uvicorn's exit status when the application's start-up fails
_log = logging.getLogger("uvicorn.error")  # where uvicorn logs that it runs


def _run(config: uvicorn.Config, binds: Sequence[_Bind], workers: int) -> None:
    """Bind ``binds``, serve on them with one process or a supervisor of ``workers``, clean up.

    A graceful shut-down on SIGTERM or Ctrl+C returns normally (exit status 0); a failed
    start-up exits with status 3.
    """
    import uvicorn

    with _stop_signals_interrupt():
        sockets, files = _listen(binds, config.backlog)
        try:
            scheme = "https" if config.is_ssl else "http"
            for sock in sockets:
                _log.info("Uvicorn running on %s (Press CTRL+C to quit)", _url(sock, scheme))
            if workers > 1:
                supervisor = _supervisor(config, sockets)
                supervisor.run()
                if any(p.exitcode == _STARTUP_FAILURE for p in supervisor.processes):
                    sys.exit(_STARTUP_FAILURE)
            else:
                server = uvicorn.Server(config)
                server.run(sockets=sockets)
                if not server.started:
                    sys.exit(_STARTUP_FAILURE)
        except KeyboardInterrupt:
            pass
        finally:
            _close(sockets, files)


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """Make SIGTERM raise KeyboardInterrupt, as Ctrl+C does, so clean-up code runs.

    uvicorn handles both signals while it serves and sends them again once it has shut down
    gracefully; without this the repeated SIGTERM would kill the process before the Unix
    socket files are removed.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _supervisor(config: uvicorn.Config, sockets: list[socket.socket]) -> Multiprocess:
    """The worker supervisor of uvicorn, closing its copies of the sockets first when it stops."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    class Supervisor(Multiprocess):
        def terminate_all(self) -> None:
            # The supervisor's copy of a listening socket keeps it open after the workers
            # closed theirs: new connections would wait, unanswered, until it exits. Closing
            # it first makes them fail at once, so a load balancer retries elsewhere.
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    return Supervisor(config, sockets=sockets)


def _settings_of(app: Any) -> Settings:
    """The settings of ``app`` when it is a Trellis app; else those of the environment."""
    settings = getattr(app, "settings", None)
    from trellis.config import Settings, load_settings

    if isinstance(settings, Settings):
        return settings
    return load_settings()
