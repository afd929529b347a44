"""The one SSH adapter: paramiko, key-only, host keys pinned, jumps through a bastion.

The jump is a `direct-tcpip` channel opened on the bastion's transport and used as the socket of
the second connection, which is what `ssh -J` does; no local port is opened. Host keys come
from a known_hosts file and unknown or changed keys are refused (RejectPolicy); passwords are
never sent.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import shlex
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from hpcstack.errors import ToolError

log = logging.getLogger(__name__)


class SshError(ToolError):
    """Connecting, authenticating or running a command over SSH failed."""


class SshHostKeyError(SshError):
    """The server's host key is unknown or differs from the pinned one."""


class SshAuthError(SshError):
    """The server refused our key."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int = 22
    user: str = "admin"

    def __str__(self) -> str:
        port = f":{self.port}" if self.port != 22 else ""
        return f"{self.user}@{self.host}{port}"

    @classmethod
    def parse(cls, text: str, user: str) -> Endpoint:
        """`[user@]host[:port]`."""
        if "@" in text:
            user, text = text.split("@", 1)
        host, sep, port = text.rpartition(":")
        if not sep:
            return cls(text, 22, user)
        if not port.isdigit():
            raise SshError(summary=f"bad port in {text!r}: expected HOST[:PORT]")
        return cls(host, int(port), user)


@dataclass(frozen=True)
class SshSettings:
    known_hosts: Path
    key_file: Path | None = None  # None: keys from the SSH agent
    timeout: float = 15.0


@dataclass(frozen=True)
class RunResult:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class FileToSend:
    local: Path
    remote: str  # POSIX path relative to the remote root
    mode: int
    dir_mode: int = 0o750  # for directories this file needs that do not exist yet


Progress = Callable[[FileToSend, bool], None]  # (file, changed)


def _client(settings: SshSettings) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    if not settings.known_hosts.is_file():
        raise SshHostKeyError(
            summary=f"known_hosts file {settings.known_hosts} does not exist: pin the hosts' "
            "keys first (docs/aws.md, 'Pin the host keys')"
        )
    client.load_host_keys(str(settings.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def _connect(settings: SshSettings, endpoint: Endpoint, sock: Any = None) -> paramiko.SSHClient:
    client = _client(settings)
    try:
        client.connect(
            endpoint.host,
            port=endpoint.port,
            username=endpoint.user,
            key_filename=str(settings.key_file) if settings.key_file else None,
            allow_agent=settings.key_file is None,
            look_for_keys=False,
            timeout=settings.timeout,
            auth_timeout=settings.timeout,
            banner_timeout=settings.timeout,
            sock=sock,
        )
    except (paramiko.SSHException, OSError) as exc:
        client.close()
        raise _connect_error(exc, settings, endpoint) from None
    return client


def _connect_error(exc: Exception, settings: SshSettings, endpoint: Endpoint) -> SshError:
    """What a failed connection means and what to do about it, the raw message kept."""
    where = str(endpoint)
    kind: type[SshError] = SshError
    if isinstance(exc, paramiko.BadHostKeyException):
        kind = SshHostKeyError
        summary = (
            f"the host key of {endpoint.host} CHANGED since it was pinned in "
            f"{settings.known_hosts}: stop and find out why before removing the old key"
        )
    elif isinstance(exc, paramiko.AuthenticationException):
        kind = SshAuthError
        summary = (
            f"{where} refused the SSH key: check --identity and that the instance "
            "was created with your public key"
        )
    elif isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        kind = SshHostKeyError
        summary = (
            f"{endpoint.host} is not in {settings.known_hosts}: pin its host key "
            "first (docs/aws.md, 'Pin the host keys')"
        )
    elif isinstance(exc, paramiko.SSHException):
        summary = "SSH failed"
    else:
        summary = (
            f"cannot reach {where}: check the address, that the instance runs and "
            "that your address is allowed (`hpcstack aws allow-ip`)"
        )
    return kind(command=["ssh", where], stderr=str(exc), summary=summary)


class Remote:
    """An SSH session to `target`, through `jump` when given. Use as a context manager."""

    def __init__(self, target: Endpoint, settings: SshSettings, jump: Endpoint | None = None):
        self.target = target
        self.jump = jump
        self.settings = settings
        self._stack = ExitStack()
        self._client: paramiko.SSHClient | None = None

    def __enter__(self) -> Remote:
        try:
            sock = None
            if self.jump is not None:
                bastion = self._stack.enter_context(_connect(self.settings, self.jump))
                sock = self._open_jump(bastion)
            self._client = self._stack.enter_context(
                _connect(self.settings, self.target, sock=sock)
            )
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open_jump(self, bastion: paramiko.SSHClient) -> paramiko.Channel:
        transport = bastion.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip", (self.target.host, self.target.port), ("127.0.0.1", 0)
            )
        except paramiko.SSHException as exc:
            raise SshError(
                command=["ssh", "-J", str(self.jump), str(self.target)],
                stderr=str(exc),
                summary=f"the bastion could not reach {self.target.host}:{self.target.port}",
            ) from None

    @property
    def client(self) -> paramiko.SSHClient:
        if self._client is None:
            raise RuntimeError("Remote used outside its `with` block")
        return self._client

    def run(self, argv: Sequence[str], check: bool = True, timeout: float = 900) -> RunResult:
        """Run a command (argv is quoted for the remote shell). Raises SshError on failure."""
        command = shlex.join(argv)
        log.debug("ssh %s: %s", self.target, command)
        _, stdout, stderr = self.client.exec_command(command, timeout=timeout)
        out = stdout.read().decode("utf-8", "replace")
        err = stderr.read().decode("utf-8", "replace")
        code = stdout.channel.recv_exit_status()
        result = RunResult(list(argv), code, out, err)
        if check and code != 0:
            raise SshError(
                command=["ssh", str(self.target), *argv],
                returncode=code,
                stdout=out,
                stderr=err,
                summary=f"command failed on {self.target.host}",
            )
        return result

    def sync(self, root: str, files: Sequence[FileToSend], progress: Progress | None = None) -> int:
        """Copy files under `root` over SFTP, skipping identical ones. Returns files changed."""
        changed = 0
        with _sftp(self.client) as sftp:
            for item in files:
                remote = posixpath.join(root, item.remote)
                did = _put_if_changed(sftp, item, remote)
                changed += did
                if progress is not None:
                    progress(item, did)
        return changed


@contextmanager
def _sftp(client: paramiko.SSHClient) -> Iterator[paramiko.SFTPClient]:
    sftp = client.open_sftp()
    try:
        yield sftp
    finally:
        sftp.close()


def _makedirs(sftp: paramiko.SFTPClient, path: str, mode: int) -> None:
    parts = []
    while path not in ("", "/"):
        try:
            sftp.stat(path)
            break
        except FileNotFoundError:
            parts.append(path)
            path = posixpath.dirname(path)
    for p in reversed(parts):
        sftp.mkdir(p, mode=mode)
        sftp.chmod(p, mode)  # mkdir's mode is filtered by the server's umask


def _remote_digest(sftp: paramiko.SFTPClient, path: str, size: int) -> str | None:
    try:
        st = sftp.stat(path)
    except FileNotFoundError:
        return None
    if st.st_size != size or not stat.S_ISREG(st.st_mode or 0):
        return None
    with sftp.open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _put_if_changed(sftp: paramiko.SFTPClient, item: FileToSend, remote: str) -> bool:
    data = item.local.read_bytes()
    same = _remote_digest(sftp, remote, len(data)) == hashlib.sha256(data).hexdigest()
    if same:
        sftp.chmod(remote, item.mode)
        return False
    _makedirs(sftp, posixpath.dirname(remote), item.dir_mode)
    # Write beside, then rename over: a reader never sees half a file. The mode is set before
    # any byte is written, so a secret is never readable by others, not even briefly.
    tmp = f"{remote}.hpcstack-tmp"
    with suppress(FileNotFoundError):
        sftp.remove(tmp)  # left by an interrupted run, maybe read-only
    with sftp.open(tmp, "wb") as fh:
        sftp.chmod(tmp, item.mode)
        fh.write(data)
    sftp.posix_rename(tmp, remote)
    return True
