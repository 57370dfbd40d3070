#!/usr/bin/env python3
"""The chat-api benchmark harness (stdlib only). Run it through bench/run.sh.

    bench.py compare   chat-api beside the thin reference, the Python peer,
                       (BASELINE_BIN) an earlier chat-api build and (PGBOUNCER=1)
                       chat-api through PgBouncer, then pgbench
    bench.py scale     one user with 1,000,000 chats against one with 1,000

Everything is configured by environment variables (see bench/README.md);
run.sh sets the defaults, checks the prerequisites and builds the binary.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WRK_DIR = HERE / "wrk"
PGBENCH_DIR = HERE / "pgbench"

ALL_SCENARIOS = ["get", "list", "list_deep_skip", "list_deep_cursor", "create", "create_one_user", "patch",
                 "delete", "delete_one_user", "mix", "mix_one_writer"]
# What a service cannot run, and why (its row says n/a).
CANNOT = {
    "peer": {"list_deep_cursor": "the peer has no cursor mode"},
    "thin": {"list_deep_cursor": "thin has no cursor mode", "delete": "thin has no DELETE route",
             "delete_one_user": "thin has no DELETE route", "mix_one_writer": "thin has no DELETE route"},
}
SERVICE_ORDER = ["chat-api", "chat-api-before", "chat-api-pgbouncer", "thin", "peer"]

# Scenarios that delete: (whose pool: "many" = one per connection user, "one" =
# the writer's; the share of requests that delete, times how much faster the
# mix runs than the creates that sized it). The pool is sized from the same
# service's create rate in this run (see ensure_pool).
DELETES = {"delete": ("many", 1.0), "delete_one_user": ("one", 1.0), "mix_one_writer": ("one", 0.6)}

# Targets. Issue 5: req/s chat-api >= factor x the peer; vs pgbench: chat-api
# req/s >= factor x pgbench tps for the same SQL at the same concurrency.
# Issue 10: one user's writes >= 5x the peer's one-user figures and >= 0.8x the
# many-users figures; chat-api / thin. Issue 9: within 3 % of the build before.
RPS_VS_PEER = {"get": 15.0, "patch": 10.0, "list": 6.0, "create": 5.0, "create_one_user": 5.0,
               "delete_one_user": 5.0}
VS_PGBENCH = {"get": 0.3, "list": 0.4, "create": 0.4, "patch": 0.4}
VS_THIN = {"get": 0.9, "patch": 0.9, "create_one_user": 0.9, "list": 1.2}
ONE_VS_MANY = {"create_one_user": ("create", 0.8), "delete_one_user": ("delete", 0.8)}
VS_BEFORE = {"get": 0.97, "list": 0.97, "patch": 0.97, "create": 0.97}
P99_VS_PEER_MAX = 0.1  # chat-api p99 <= peer p99 / 10, every scenario
RSS_LIMIT_MB = 48.0
MIX_WEIGHTS = {"get": 40, "list": 40, "create": 10, "patch": 10}

JWT_SECRET = "chat-api-benchmark-secret-0123456789abcdef"  # fixed, >= 32 bytes (APP_ENV=production)


# --------------------------------------------------------------------------- config


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_int(name: str, default: int, minimum: int = 0) -> int:
    text = env_str(name, str(default))
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        sys.exit(f"bench: {name} must be an integer, got {text!r}")
    if value < minimum:
        sys.exit(f"bench: {name} must be >= {minimum}, got {value}")
    return value


def env_bool(name: str) -> bool:
    return env_str(name, "0").lower() in {"1", "true", "yes", "on"}


def parse_duration(text: str) -> int:
    """wrk-style duration (10, 10s, 2m, 1h) in whole seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smh]?)\s*", text)
    if not match:
        sys.exit(f"bench: cannot read duration {text!r} (use e.g. 10s, 2m)")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


class Config:
    def __init__(self) -> None:
        self.duration = env_str("DURATION", "10s")
        self.duration_s = parse_duration(self.duration)
        self.connections = env_int("CONNECTIONS", 64, 1)
        self.threads = env_int("THREADS", 2, 1)
        if self.connections < self.threads or self.connections % self.threads:
            sys.exit("bench: CONNECTIONS must be a multiple of THREADS (wrk gives each thread CONNECTIONS/THREADS)")
        self.pg_url = env_str("PG_URL", "postgres://postgres@127.0.0.1:5432")
        # One transport for chat-api, the peer, psql and pgbench alike.
        self.pg_ssl = env_str("PG_SSL", "disable")
        self.chat_api_pool = env_int("CHAT_API_POOL", 16, 1)
        self.chat_api_min_pool = os.environ.get("CHAT_API_MIN_POOL") or None  # None = chat-api's default (0)
        self.peer_pool = os.environ.get("PEER_POOL") or None  # per worker; None = the peer's default (10)
        self.peer_workers = env_int("PEER_WORKERS", 2, 1)
        self.skip_peer = env_bool("SKIP_PEER")
        self.skip_thin = env_bool("SKIP_THIN")
        # An earlier chat-api build, run as "chat-api-before" (same scenarios, own database).
        baseline = os.environ.get("BASELINE_BIN") or ""
        self.baseline_bin = Path(baseline) if baseline else None
        self.baseline_port = env_int("BASELINE_PORT", 18083, 1)
        # chat-api through a PgBouncer in transaction pooling mode, run as
        # "chat-api-pgbouncer" (same binary, own database, DATABASE_POOLER=transaction).
        self.pgbouncer = env_bool("PGBOUNCER")
        self.pgbouncer_bin = Path(env_str("PGBOUNCER_BIN", shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"))
        self.pgbouncer_port = env_int("PGBOUNCER_PORT", 16432, 0)  # 0: any free port
        self.pgbouncer_pool = env_int("PGBOUNCER_POOL", self.chat_api_pool, 1)  # default_pool_size
        self.pgbouncer_chat_port = env_int("PGBOUNCER_CHAT_PORT", 18084, 1)
        self.thin_dir = Path(env_str("THIN_DIR", str(ROOT.parent / "shared" / "peers" / "thin")))
        thin_target = env_str("THIN_TARGET", str(Path.home() / ".cache" / "chat-api-bench" / "thin-target"))
        self.thin_bin = Path(env_str("THIN_BIN", str(Path(thin_target) / "release" / "thin")))
        self.thin_port = env_int("THIN_PORT", 18082, 1)
        self.thin_pool = env_int("THIN_POOL", self.chat_api_pool, 1)
        self.delete_headroom = float(env_str("DELETE_HEADROOM", "2"))
        self.fill_max_s = env_int("FILL_MAX_SECONDS", 300, 1)
        self.rounds = env_int("ROUNDS", 1, 1)
        self.skip_pgbench = env_bool("SKIP_PGBENCH")
        self.keep_dbs = env_bool("KEEP_DBS")
        self.strict = env_bool("STRICT")
        scenarios = [s.strip() for s in env_str("SCENARIOS", ",".join(ALL_SCENARIOS)).split(",") if s.strip()]
        unknown = [s for s in scenarios if s not in ALL_SCENARIOS]
        if unknown:
            sys.exit(f"bench: unknown scenario(s) {unknown}; known: {', '.join(ALL_SCENARIOS)}")
        self.scenarios = [s for s in ALL_SCENARIOS if s in scenarios]  # canonical order
        self.seed_users = env_int("SEED_USERS", self.connections, 1)
        if self.seed_users != self.connections:
            print("bench: note: SEED_USERS differs from CONNECTIONS; users are shared out per wrk thread", file=sys.stderr)
        self.seed_chats_per_user = env_int("SEED_CHATS_PER_USER", 100, 1)
        self.deep_chats = env_int("DEEP_CHATS", 5000, 11)
        self.deep_skip = env_int("DEEP_SKIP", 4000, 1)
        if self.deep_skip + 10 > self.deep_chats:
            sys.exit("bench: DEEP_SKIP + 10 must not exceed DEEP_CHATS (the deep page must be full)")
        self.seed_workers = env_int("SEED_WORKERS", 16, 1)
        self.wrk_timeout = env_str("WRK_TIMEOUT", "10s")
        self.warmup = env_str("WARMUP", "2s")
        self.warmup_s = parse_duration(self.warmup)
        self.chat_port = env_int("CHAT_API_PORT", 18080, 1)
        self.peer_port = env_int("PEER_PORT", 18081, 1)
        target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
        self.binary = Path(env_str("CHAT_API_BIN", str(Path(target) / "release" / "chat-api")))
        self.peer_dir = Path(env_str("PEER_DIR", str(ROOT.parent / "shared" / "peers" / "fastapi")))
        self.start_timeout = env_int("START_TIMEOUT", 60, 1)
        self.peer_start_timeout = env_int("PEER_START_TIMEOUT", 600, 1)  # first start installs its venv
        self.results_dir = Path(env_str("RESULTS_DIR", str(HERE / "results")))
        self.work_dir = Path(env_str("BENCH_WORK_DIR", "") or tempfile.mkdtemp(prefix="chat-bench."))
        self.pidfile = self.work_dir / "pids"
        # scale mode
        self.scale_chats = env_int("SCALE_CHATS", 1_000_000, 20)
        self.scale_small_chats = env_int("SCALE_SMALL_CHATS", 1000, 20)
        self.scale_depth = env_int("SCALE_DEPTH", self.scale_chats // 2, 1)
        if self.scale_depth + 10 > self.scale_chats:
            sys.exit("bench: SCALE_DEPTH + 10 must not exceed SCALE_CHATS")
        self.scale_connections = env_int("SCALE_CONNECTIONS", 8, 1)
        self.scale_threads = min(self.threads, self.scale_connections)
        while self.scale_connections % self.scale_threads:
            self.scale_threads -= 1
        self.scale_duration = env_str("SCALE_DURATION", self.duration)
        self.scale_metric = env_str("SCALE_METRIC", "p50")
        if self.scale_metric not in {"p50", "p99"}:
            sys.exit("bench: SCALE_METRIC must be p50 or p99")

    def public(self) -> dict:
        keys = [
            "duration", "connections", "threads", "pg_url", "pg_ssl", "chat_api_pool", "chat_api_min_pool", "peer_pool",
            "peer_workers",
            "skip_peer", "skip_pgbench", "scenarios", "seed_users", "seed_chats_per_user", "deep_chats",
            "deep_skip", "seed_workers", "wrk_timeout", "warmup", "chat_port", "peer_port", "binary", "peer_dir",
            "skip_thin", "baseline_bin", "baseline_port", "thin_dir", "thin_bin", "thin_port", "thin_pool",
            "delete_headroom", "fill_max_s", "rounds", "pgbouncer", "pgbouncer_bin", "pgbouncer_port",
            "pgbouncer_pool", "pgbouncer_chat_port",
        ]
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self).items() if k in keys}
        out["pg_url"] = redact(self.pg_url)
        return out

    def scale_public(self) -> dict:
        return {
            "scale_chats": self.scale_chats, "scale_small_chats": self.scale_small_chats,
            "scale_depth": self.scale_depth, "scale_connections": self.scale_connections,
            "scale_threads": self.scale_threads, "scale_duration": self.scale_duration,
            "scale_metric": self.scale_metric, "chat_api_pool": self.chat_api_pool, "warmup": self.warmup,
            "chat_api_min_pool": self.chat_api_min_pool,
            "pg_url": redact(self.pg_url), "binary": str(self.binary), "wrk_timeout": self.wrk_timeout,
        }


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def db_url(base: str, db: str, ssl: str = "", ssl_param: str = "sslmode") -> str:
    """`base` with database `db`; with `ssl` set, that TLS mode under the name the
    client understands (libpq and sqlx: sslmode; asyncpg: ssl)."""
    parts = urllib.parse.urlsplit(base)
    query = parts.query
    if ssl:
        query = "&".join(q for q in [query, f"{ssl_param}={ssl}"] if q)
    return urllib.parse.urlunsplit(parts._replace(path="/" + db, query=query))


# --------------------------------------------------------------------------- small helpers


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(sub: str, ttl: int = 3600) -> str:
    """HS256 JWT {"sub": sub, "exp": now + ttl}, signed with JWT_SECRET."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps({"sub": sub, "exp": int(time.time()) + ttl}, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = b64url(hmac.new(JWT_SECRET.encode(), signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def chat_api_cursor(created_at_micros: int, chat_id: str) -> str:
    """The cursor chat-api hands out (crates/chat-api/src/cursor.rs): base64url
    without padding of [1u8] + created_at as big-endian i64 microseconds + the 16 id bytes."""
    raw = bytes([1]) + created_at_micros.to_bytes(8, "big", signed=True) + uuid.UUID(chat_id).bytes
    return b64url(raw)


def psql(cfg: Config, db: str, sql: str | None = None, *, file: Path | None = None,
         variables: dict | None = None) -> str:
    cmd = ["psql", "-X", "-q", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", db_url(cfg.pg_url, db, cfg.pg_ssl)]
    for key, value in (variables or {}).items():
        cmd += ["-v", f"{key}={value}"]
    if file is not None:
        cmd += ["-f", str(file)]
    if sql is not None:
        cmd += ["-c", sql]
    # The harness's own statements (VACUUM, seeds, the delete pools' reads) are
    # not bounded by a statement_timeout set on a database (bench_chat_pgbouncer's)
    # or role; an `options` in PG_URL's query still wins over PGOPTIONS.
    env = dict(os.environ)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c statement_timeout=0").strip()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"psql on {db} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def recreate_db(cfg: Config, db: str) -> None:
    assert db.startswith("bench_")
    psql(cfg, "postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    psql(cfg, "postgres", f'CREATE DATABASE "{db}"')


def drop_db(cfg: Config, db: str) -> None:
    assert db.startswith("bench_")
    try:
        psql(cfg, "postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    except RuntimeError as error:
        log(f"warning: could not drop {db}: {error}")


def vacuum_analyze(cfg: Config, db: str) -> None:
    psql(cfg, db, "VACUUM ANALYZE")


def migrate(cfg: Config, db: str) -> None:
    env = chat_api_env(cfg, db, cfg.chat_port)
    result = subprocess.run([str(cfg.binary), "migrate"], env=env, cwd=cfg.work_dir, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"chat-api migrate on {db} failed: {result.stderr.strip()}")


def chat_api_env(cfg: Config, db: str, port: int) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url(cfg.pg_url, db, cfg.pg_ssl),
        BIND_ADDRESS=f"127.0.0.1:{port}",
        JWT_SECRET=JWT_SECRET,
        APP_ENV="production",
        RUST_LOG="warn",  # no per-request log lines
        LOG_FORMAT="json",  # so the log can be counted by level afterwards
        DATABASE_MAX_CONNECTIONS=str(cfg.chat_api_pool),
    )
    env.pop("DATABASE_MIN_CONNECTIONS", None)
    if cfg.chat_api_min_pool:
        env["DATABASE_MIN_CONNECTIONS"] = cfg.chat_api_min_pool
    for key in ("JWT_PUBLIC_KEY_FILE", "JWT_ALGORITHMS", "JWT_ISSUER", "JWT_AUDIENCE"):
        env.pop(key, None)
    return env


def read_status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    out += [int(x) for x in fh.read().split()]
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        pass
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


# --------------------------------------------------------------------------- servers


class Server:
    """A server process in its own process group (so it and its workers can be
    killed together, and a Ctrl-C in the terminal does not reach it)."""

    def __init__(self, cfg: Config, name: str, port: int, db: str, kind: str | None = None,
                 health: str = "/health/ready") -> None:
        self.cfg, self.name, self.port, self.db = cfg, name, port, db
        self.kind = kind or name  # "chat-api" (either build), "thin" or "peer"
        self.health = health
        self.proc: subprocess.Popen | None = None
        self.log_path = cfg.work_dir / f"{name}.log"
        self.exit_code: int | None = None
        self.died_during_run = False

    def start(self, cmd: list[str], env: dict, cwd: Path) -> None:
        self.log_fh = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log_fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        with open(self.cfg.pidfile, "a") as fh:
            fh.write(f"{self.proc.pid}\n")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: int) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it was ready; "
                                   f"log: {self.log_path}\n{tail(self.log_path)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", self.health)
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200:
                    return
                last = f"status {response.status}"
            except OSError as error:
                last = str(error)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s ({last}); log: {self.log_path}")

    stop_signal = signal.SIGTERM

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            self.exit_code = self.proc.returncode
        else:
            try:
                os.killpg(self.proc.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.exit_code = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.exit_code = self.proc.wait()
        # Workers left behind in the group (the peer's) get the same signal.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log_fh.close()
        forget_pid(self.cfg, self.proc.pid)


def forget_pid(cfg: Config, pid: int) -> None:
    try:
        lines = [l for l in cfg.pidfile.read_text().split() if l != str(pid)]
        cfg.pidfile.write_text("".join(l + "\n" for l in lines))
    except FileNotFoundError:
        pass


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def start_chat_api(cfg: Config, db: str, name: str = "chat-api", binary: Path | None = None,
                   port: int | None = None, extra_env: dict | None = None) -> Server:
    """`db` is the server's database on PostgreSQL itself (what VACUUM ANALYZE and
    the delete pools' reads use); `extra_env` may point DATABASE_URL elsewhere."""
    port = port or cfg.chat_port
    server = Server(cfg, name, port, db, kind="chat-api")
    server.binary = binary or cfg.binary
    env = chat_api_env(cfg, db, port)
    env.update(extra_env or {})
    server.start([str(server.binary), "serve"], env, cfg.work_dir)
    return server


class PgBouncer(Server):
    """PGBOUNCER=1: one PgBouncer in transaction pooling mode in front of PG_URL,
    every database of that server reachable through it under its own name; the
    configuration of the test suite's helper (crates/chat-testing/src/pgbouncer.rs)
    and docs/operations.md "Behind PgBouncer". Its files and log are in
    $BENCH_WORK_DIR/pgbouncer/; it runs in its own process group like the servers.
    Clients reach it over plain TCP on 127.0.0.1; it reaches PostgreSQL with
    sslmode PG_SSL (server_tls_sslmode)."""

    # SIGINT is PgBouncer's safe shutdown (exit 0 once no transaction runs; its
    # clients are stopped first); SIGTERM is its immediate one.
    stop_signal = signal.SIGINT

    def __init__(self, cfg: Config) -> None:
        port = cfg.pgbouncer_port or free_port()
        super().__init__(cfg, "pgbouncer", port, "", kind="pgbouncer", health="")
        self.dir = cfg.work_dir / "pgbouncer"
        self.log_path = self.dir / "pgbouncer.log"
        parts = urllib.parse.urlsplit(cfg.pg_url)
        self.user = urllib.parse.unquote(parts.username or "postgres")
        self.password = urllib.parse.unquote(parts.password) if parts.password else None
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 5432

    def launch(self) -> None:
        cfg = self.cfg
        if not port_free(self.port):
            raise RuntimeError(f"PGBOUNCER_PORT {self.port} is in use on 127.0.0.1 (set PGBOUNCER_PORT, "
                               "0 for any free port)")
        self.dir.mkdir(parents=True, exist_ok=True)
        target = f"host={self.target_host} port={self.target_port}"
        if self.password is not None:
            target += f" user={self.user} password={self.password}"
        users = self.dir / "users.txt"
        ini = self.dir / "pgbouncer.ini"
        for path in (users, ini):
            path.touch(mode=0o600)
        users.write_text(f'"{self.user}" ""\n')
        ini.write_text(
            "; written by bench/bench.py (PGBOUNCER=1)\n"
            "[databases]\n"
            f"* = {target}\n"
            "\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            "pool_mode = transaction\n"
            "ignore_startup_parameters = extra_float_digits\n"
            "max_client_conn = 1000\n"
            f"default_pool_size = {cfg.pgbouncer_pool}\n"
            "reserve_pool_size = 0\n"
            f"server_tls_sslmode = {cfg.pg_ssl}\n")
        cmd = [str(cfg.pgbouncer_bin)]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root: it switches to postgres, which
            # must reach its files (they may hold PG_URL's password: its own,
            # 0600; the work dir, mktemp's 0700, becomes traversable).
            cmd += ["-u", "postgres"]
            os.chmod(cfg.work_dir, 0o711)
            for path in (self.dir, users, ini):
                shutil.chown(path, "postgres")
            os.chmod(self.dir, 0o700)
        self.start(cmd + [str(ini)], dict(os.environ), self.dir)

    def url_for(self, db: str) -> str:
        """The URL of `db` through this PgBouncer: PG_URL's user, password and
        query, PgBouncer's address, no TLS (loopback; PgBouncer has no certificate)."""
        parts = urllib.parse.urlsplit(self.cfg.pg_url)
        auth = parts.netloc.rpartition("@")[0] or urllib.parse.quote(self.user, safe="")
        query = "&".join([q for q in parts.query.split("&") if q and not q.startswith("sslmode=")]
                         + ["sslmode=disable"])
        return urllib.parse.urlunsplit((parts.scheme, f"{auth}@127.0.0.1:{self.port}", "/" + db, query, ""))

    def wait_ready(self, timeout: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"pgbouncer exited with {self.proc.returncode} before it listened; "
                                   f"log: {self.log_path}\n{tail(self.log_path)}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"pgbouncer not listening on 127.0.0.1:{self.port} after {timeout}s; "
                           f"log: {self.log_path}\n{tail(self.log_path)}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_thin(cfg: Config, db: str) -> Server:
    """The thin reference: the binary run.sh built (it creates its own tables;
    it has no readiness route, so /health/live after its schema step)."""
    server = Server(cfg, "thin", cfg.thin_port, db, health="/health/live")
    env = dict(os.environ)
    env.update(DATABASE_URL=db_url(cfg.pg_url, db, cfg.pg_ssl), BIND_ADDRESS=f"127.0.0.1:{cfg.thin_port}",
               JWT_SECRET=JWT_SECRET, DATABASE_MAX_CONNECTIONS=str(cfg.thin_pool))
    server.start([str(cfg.thin_bin)], env, cfg.work_dir)
    return server


def start_peer(cfg: Config, db: str) -> Server:
    server = Server(cfg, "peer", cfg.peer_port, db)
    env = dict(os.environ)
    env.update(DATABASE_URL=db_url(cfg.pg_url, db, cfg.pg_ssl, "ssl"), BIND_ADDRESS=f"127.0.0.1:{cfg.peer_port}",
               JWT_SECRET=JWT_SECRET, APP_ENV="production", WORKERS=str(cfg.peer_workers))
    env.pop("ACCESS_LOG_ENABLED", None)  # no access log (run.sh's default)
    env.pop("DATABASE_MAX_CONNECTIONS", None)
    for key in ("JWT_PUBLIC_KEY_FILE", "JWT_ALGORITHMS", "JWT_ISSUER", "JWT_AUDIENCE"):
        env.pop(key, None)
    if cfg.peer_pool:
        env["DATABASE_MAX_CONNECTIONS"] = cfg.peer_pool
    server.start(["bash", str(cfg.peer_dir / "run.sh")], env, cfg.work_dir)
    return server


def scrape_metrics(server: Server) -> dict:
    """chat-api's /metrics: pool occupancy and the statement/transaction counters."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return {}
    out: dict = {}
    for line in text.splitlines():
        match = re.match(r"^db_pool_connections_(idle|in_use|max) (\S+)$", line)
        if match:
            out[f"pool_{match.group(1)}"] = int(float(match.group(2)))
        match = re.match(r"^(db_statements_total|db_transactions_total) (\S+)$", line)
        if match:
            out[match.group(1)] = int(float(match.group(2)))
    return out


def log_summary(server: Server) -> dict:
    """What the server wrote to its log during the run (RUST_LOG=warn; the peer
    has no access log): counts by level and a few distinct samples."""
    text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    levels: dict[str, int] = {}
    samples: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        level = "OTHER"
        message = line
        if server.kind == "chat-api":
            try:
                record = json.loads(line)
                level = str(record.get("level", "OTHER")).upper()
                fields = record.get("fields", {})
                message = json.dumps(fields, sort_keys=True) if fields else line
            except ValueError:
                level = "PANIC" if "panicked" in line else "OTHER"
        elif server.kind == "pgbouncer":
            # "2026-01-01 12:00:00.000 UTC [123] LOG …": LOG lines (connections,
            # stats) are its INFO; WARNING, ERROR, FATAL are worth reading.
            match = re.match(r"^\S+ \S+ \S+ \[\d+\] ([A-Z]+) ", line)
            level = {"LOG": "INFO", "DEBUG": "INFO", "NOISE": "INFO"}.get(match.group(1), match.group(1)) \
                if match else "OTHER"
        else:
            for candidate in ("CRITICAL", "ERROR", "WARNING", "Traceback", "panicked", "INFO"):
                if line.startswith(candidate) or candidate in line[:40]:
                    level = candidate.upper()
                    break
        levels[level] = levels.get(level, 0) + 1
        if level not in {"INFO", "OTHER"} or server.kind == "chat-api":
            key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+", "#", message)[:200]
            if key not in seen and len(samples) < 8:
                seen.add(key)
                samples.append(line[:500])
    return {"path": str(server.log_path), "lines_by_level": levels, "samples": samples,
            "exit_code": server.exit_code, "died_during_run": server.died_during_run}


# --------------------------------------------------------------------------- RSS / CPU sampling


class Sampler:
    """Samples the server's resident memory every 100 ms while a scenario runs.

    chat-api (one process): VmRSS samples, and VmHWM -- the kernel's own peak,
    reset before each scenario by writing 5 to /proc/<pid>/clear_refs -- which
    also catches peaks between samples. Peer (uvicorn master + workers): the
    sum of the workers' VmRSS at each sample; its peak is the largest sum. The
    master and multiprocessing's resource tracker serve no requests and are
    reported apart. CPU: the processes' utime + stime over the wall time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.stop_event = threading.Event()
        self.peak_kb = 0
        self.peak_master_kb = 0
        self.peak_other_kb = 0
        self.samples = 0
        self.hwm_reset = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    def roles(self) -> tuple[list[int], list[int], list[int]]:
        """(serving processes, master, others)."""
        pid = self.server.pid
        if self.server.kind != "peer":
            return [pid], [], []
        workers, others = [], []
        for child in children(pid):
            (workers if "spawn_main" in cmdline(child) else others).append(child)
        return workers, [pid], others

    def sample(self) -> None:
        workers, master, others = self.roles()
        self.peak_kb = max(self.peak_kb, sum(read_status_kb(p, "VmRSS") or 0 for p in workers))
        self.peak_master_kb = max(self.peak_master_kb, sum(read_status_kb(p, "VmRSS") or 0 for p in master))
        self.peak_other_kb = max(self.peak_other_kb, sum(read_status_kb(p, "VmRSS") or 0 for p in others))
        self.samples += 1

    def cpu(self) -> float:
        pids = [p for group in self.roles() for p in group]
        return sum(cpu_seconds(p) or 0.0 for p in pids)

    def start(self) -> None:
        if self.server.kind != "peer":
            try:
                with open(f"/proc/{self.server.pid}/clear_refs", "w") as fh:
                    fh.write("5")
                self.hwm_reset = True
            except OSError:
                self.hwm_reset = False
        self.cpu0, self.t0 = self.cpu(), time.monotonic()
        self.sample()
        self.thread.start()

    def run(self) -> None:
        while not self.stop_event.wait(0.1):
            self.sample()

    def stop(self) -> dict:
        self.stop_event.set()
        self.thread.join()
        self.sample()
        wall = time.monotonic() - self.t0
        out = {"peak_rss_mb": mb(self.peak_kb), "rss_samples": self.samples,
               "cpu_cores": round((self.cpu() - self.cpu0) / wall, 2) if wall > 0 else None}
        if self.server.kind != "peer":
            hwm = read_status_kb(self.server.pid, "VmHWM")
            out["vm_hwm_mb"] = mb(hwm)
            out["vm_hwm_reset_before_scenario"] = self.hwm_reset
            out["sampled_peak_rss_mb"] = mb(self.peak_kb)
            if self.hwm_reset and hwm:
                out["peak_rss_mb"] = mb(max(hwm, self.peak_kb))
        else:
            workers, _, _ = self.roles()
            out["workers"] = len(workers)
            out["rss_method"] = "peak of the sum of the workers' VmRSS, sampled every 100 ms"
            out["master_peak_rss_mb"] = mb(self.peak_master_kb)
            out["resource_tracker_peak_rss_mb"] = mb(self.peak_other_kb)
        return out


# --------------------------------------------------------------------------- HTTP client for seeding


class Api:
    """Keep-alive HTTP/1.1 client, one connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def call(self, method: str, path: str, token: str, body: dict | None = None):
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")


def seed_server(api: Api, name: str, users: list[dict], deep: dict, per_user: int, deep_chats: int,
                workers: int) -> dict:
    """Creates the chats through POST /chat/ with a thread pool; returns the ids per user.
    `users` includes the writer (the one-user scenarios' user): `per_user` chats each."""
    ids: dict[str, list[str]] = {u["id"]: [] for u in users}
    ids[deep["id"]] = []
    lock = threading.Lock()
    errors: list[str] = []

    def make(user: dict, start: int, count: int) -> None:
        made = []
        for i in range(start, start + count):
            status, _, payload = api.call("POST", "/chat/", user["token"],
                                          {"title": f"seed chat {i}", "description": "made by the benchmark"})
            if status != 201:
                errors.append(f"{name}: POST /chat/ answered {status}: {payload[:200]!r}")
                return
            made.append(json.loads(payload)["id"])
        with lock:
            ids[user["id"]].extend(made)

    tasks = [(u, 0, per_user) for u in users]
    chunk = 250
    tasks += [(deep, start, min(chunk, deep_chats - start)) for start in range(0, deep_chats, chunk)]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(make, *task) for task in tasks]:
            future.result()
    if errors:
        raise RuntimeError("seeding failed: " + "; ".join(errors[:5]))
    seconds = time.monotonic() - t0
    total = len(users) * per_user + deep_chats
    log(f"seeded {name}: {total} chats in {seconds:.1f}s ({total / seconds:.0f}/s)")
    return {"ids": ids, "seconds": round(seconds, 2), "chats": total}


def walk_cursor(api: Api, token: str, depth: int) -> tuple[str, int]:
    """Walks the list in cursor mode with limit=100 until `depth` items were seen;
    returns the cursor naming item `depth` and the number of requests made."""
    cursor, seen, requests = None, 0, 0
    while seen < depth:
        limit = min(100, depth - seen)
        path = f"/chat/?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, headers, payload = api.call("GET", path, token)
        requests += 1
        if status != 200:
            raise RuntimeError(f"cursor walk: GET {path} answered {status}: {payload[:200]!r}")
        seen += len(json.loads(payload))
        cursor = headers.get("x-next-cursor")
        if not cursor:
            raise RuntimeError(f"cursor walk: no X-Next-Cursor after {seen} items")
    return cursor, requests


def page_ids(api: Api, token: str, path: str) -> list[str]:
    status, _, payload = api.call("GET", path, token)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {payload[:200]!r}")
    return [item["id"] for item in json.loads(payload)]


def lua_user(user: dict, ids: list[str]) -> str:
    id_list = ",".join(f'"{i}"' for i in ids)
    return f'{{token = "{user["token"]}", ids = {{{id_list}}}}}'


def write_lua_data(path: Path, users: list[dict], writer: dict, ids: dict, deep: dict, deep_skip: int,
                   deep_cursor: str | None) -> None:
    lines = ["-- generated by bench/bench.py for one run and one server", "return {", "  users = {"]
    for user in users:
        lines.append(f'    {lua_user(user, ids[user["id"]])},')
    lines.append("  },")
    lines.append(f'  writer = {lua_user(writer, ids[writer["id"]])},')
    cursor = f'"{deep_cursor}"' if deep_cursor else "nil"
    lines.append(f'  deep = {{token = "{deep["token"]}", skip = {deep_skip}, cursor = {cursor}}},')
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- wrk and pgbench


def run_wrk(cfg: Config, label: str, url: str, scenario: str, connections: int, threads: int,
            duration: str, extra_env: dict) -> dict:
    env = dict(os.environ)
    env.update(BENCH_THREADS=str(threads), BENCH_WRK_DIR=str(WRK_DIR), **extra_env)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", duration, "--timeout", cfg.wrk_timeout,
           "--latency", "-s", str(WRK_DIR / f"{scenario}.lua"), url]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    out_path = cfg.work_dir / f"wrk-{label}.txt"
    out_path.write_text(" ".join(cmd) + "\n\n" + result.stdout + "\n--- stderr\n" + result.stderr)
    line = next((l for l in result.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}) for {label}: {result.stderr.strip()[:500]} "
                           f"(output in {out_path})")
    raw = json.loads(line[len("BENCH_JSON "):])
    seconds = raw["duration_us"] / 1e6
    socket = raw["socket_errors"]
    errors = raw["non2xx"] + socket["connect"] + socket["read"] + socket["write"] + socket["timeout"]
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 3),
        "p90_ms": round(lat["p90"] / 1000, 3),
        "p99_ms": round(lat["p99"] / 1000, 3),
        "p999_ms": round(lat["p999"] / 1000, 3),
        "mean_ms": round(lat["mean"] / 1000, 3),
        "max_ms": round(lat["max"] / 1000, 3),
        "errors": errors,
        "non2xx": raw["non2xx"],
        "socket_errors": socket,
        "statuses": raw["statuses"],
        "threads_ran_dry": raw.get("threads_ran_dry", 0),
        "wrk_output": str(out_path),
    }


def pgbench_files(scenario: str) -> list[str]:
    """The pgbench scripts of a scenario; none for the deletes (pgbench has no
    pool of ids to delete, and a DELETE that finds nothing costs less than one that does)."""
    if scenario == "mix":
        return [f"{PGBENCH_DIR / name}.sql@{weight}" for name, weight in MIX_WEIGHTS.items()]
    path = PGBENCH_DIR / f"{scenario}.sql"
    return [str(path)] if path.exists() else []


def run_pgbench(cfg: Config, db: str, scenario: str, variables: dict) -> dict:
    cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(cfg.connections), "-j", str(cfg.threads),
           "-T", str(cfg.duration_s)]
    for key, value in variables.items():
        cmd += ["-D", f"{key}={value}"]
    for file in pgbench_files(scenario):
        cmd += ["-f", file]
    cmd.append(db_url(cfg.pg_url, db, cfg.pg_ssl))
    result = subprocess.run(cmd, capture_output=True, text=True)
    out_path = cfg.work_dir / f"pgbench-{scenario}.txt"
    out_path.write_text(" ".join(cmd) + "\n\n" + result.stdout + "\n--- stderr\n" + result.stderr)
    tps = re.search(r"^tps = ([\d.]+) \(without initial connection time\)", result.stdout, re.M)
    if result.returncode != 0 or not tps:
        raise RuntimeError(f"pgbench {scenario} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    latency = re.search(r"^latency average = ([\d.]+) ms", result.stdout, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", result.stdout, re.M)
    processed = re.search(r"^number of transactions actually processed: (\d+)", result.stdout, re.M)
    return {
        "tps": round(float(tps.group(1)), 1),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "transactions": int(processed.group(1)) if processed else None,
        "failed": int(failed.group(1)) if failed else 0,
        "scripts": [Path(f.split("@")[0]).name + ("@" + f.split("@")[1] if "@" in f else "") for f in pgbench_files(scenario)],
        "output": str(out_path),
    }


def pgbench_phase(cfg: Config) -> dict:
    db = "bench_pgbench"
    recreate_db(cfg, db)
    migrate(cfg, db)
    t0 = time.monotonic()
    psql(cfg, db, file=PGBENCH_DIR / "seed.sql", variables={
        "users": cfg.seed_users, "per_user": cfg.seed_chats_per_user, "deep_chats": cfg.deep_chats})
    seed_seconds = time.monotonic() - t0
    row = psql(cfg, db, (
        "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), id "
        f"FROM chats WHERE user_id = md5('u' || {cfg.seed_users + 1})::uuid "
        f"ORDER BY created_at DESC, id DESC OFFSET {cfg.deep_skip - 1} LIMIT 1"))
    cursor_ts, cursor_id = row.split("|")
    variables = {"users": cfg.seed_users, "per_user": cfg.seed_chats_per_user, "deep_skip": cfg.deep_skip,
                 "cursor_ts": cursor_ts, "cursor_id": cursor_id}
    log(f"pgbench database seeded in {seed_seconds:.1f}s")
    results = {}
    for scenario in cfg.scenarios:
        if not pgbench_files(scenario):
            continue
        vacuum_analyze(cfg, db)
        results[scenario] = run_pgbench(cfg, db, scenario, variables)
        log(f"pgbench {scenario:<17} {results[scenario]['tps']:>10.1f} tps  "
            f"avg {results[scenario]['latency_avg_ms']} ms  failed {results[scenario]['failed']}")
    return {"db": db, "variables": variables, "seed_seconds": round(seed_seconds, 2), "scenarios": results}


# --------------------------------------------------------------------------- machine


def machine_info(cfg: Config) -> dict:
    def first(cmd: list[str]) -> str | None:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            text = (out.stdout or out.stderr).strip()
            return text.splitlines()[0] if text else None
        except (OSError, subprocess.TimeoutExpired):
            return None

    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = read_meminfo("MemTotal")
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True)
    try:
        pg_version = psql(cfg, "postgres", "SHOW server_version")
        pg_max_connections = int(psql(cfg, "postgres", "SHOW max_connections"))
    except RuntimeError:
        pg_version, pg_max_connections = None, None
    def describe(path: Path | None, version: bool = True) -> dict | None:
        if path is None:
            return None
        out: dict = {"path": str(path)}
        if path.exists():
            stat = path.stat()
            out["mtime"] = dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc).isoformat()
            out["size"] = stat.st_size
            if version:
                out["version"] = first([str(path), "--version"])
        return out

    binary = describe(cfg.binary)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_mb": mb(mem_kb),
        "kernel": platform.release(),
        "postgresql": pg_version,
        "postgresql_max_connections": pg_max_connections,
        "git_commit": first(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
        "git_dirty_files": len([l for l in dirty.stdout.splitlines() if l.strip()]) if dirty.returncode == 0 else None,
        "chat_api_binary": binary,
        "chat_api_before_binary": describe(cfg.baseline_bin),
        "pgbouncer_binary": describe(cfg.pgbouncer_bin) if cfg.pgbouncer else None,
        "thin_binary": None if cfg.skip_thin else describe(cfg.thin_bin, version=False),
        "wrk": first(["wrk", "-v"]),
        "pgbench": first(["pgbench", "--version"]),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def read_meminfo(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- compare mode


def compare(cfg: Config, report: dict) -> None:
    report["kind"] = "compare"
    servers: list[Server] = []
    bouncer: PgBouncer | None = None
    dbs = ["bench_chat"] + (["bench_chat_before"] if cfg.baseline_bin else []) + \
        (["bench_chat_pgbouncer"] if cfg.pgbouncer else []) + \
        ([] if cfg.skip_thin else ["bench_thin"]) + ([] if cfg.skip_peer else ["bench_peer"])
    report["databases"] = dbs + ([] if cfg.skip_pgbench else ["bench_pgbench"])
    max_conn = report["machine"].get("postgresql_max_connections")
    # What PostgreSQL sees of chat-api-pgbouncer is PgBouncer's server pool
    # (default_pool_size for its one database and user), not chat-api's pool.
    wanted = (cfg.chat_api_pool * (2 if cfg.baseline_bin else 1) + (cfg.pgbouncer_pool if cfg.pgbouncer else 0)
              + (0 if cfg.skip_thin else cfg.thin_pool)
              + (0 if cfg.skip_peer else cfg.peer_workers * int(cfg.peer_pool or 10)))
    report["server_connections_wanted"] = wanted
    if max_conn and max(wanted, cfg.connections) + 5 > max_conn:
        log(f"warning: PostgreSQL max_connections is {max_conn}; this run may hold {wanted} server "
            f"connections at once{' (PgBouncer counted with its default_pool_size)' if cfg.pgbouncer else ''} "
            f"and pgbench opens {cfg.connections}")
    try:
        for db in dbs:
            recreate_db(cfg, db)
        if cfg.pgbouncer:
            # Migrated directly on PostgreSQL (as a separate `chat-api migrate`
            # job would be), then served through the pooler with RUN_MIGRATIONS=false.
            # The statement timeout the direct chat-api sends per connection
            # comes from the database here (docs/operations.md, "Behind PgBouncer").
            migrate(cfg, "bench_chat_pgbouncer")
            statement_timeout_ms = int(int(os.environ.get("DATABASE_QUERY_TIMEOUT_MS") or 4000) * 0.8)
            psql(cfg, "postgres", f"ALTER DATABASE bench_chat_pgbouncer SET statement_timeout = "
                                  f"'{statement_timeout_ms}ms'")
            bouncer = PgBouncer(cfg)
            bouncer.launch()
            bouncer.wait_ready(cfg.start_timeout)
            log(f"pgbouncer ready on :{bouncer.port} (pid {bouncer.pid}; transaction pooling, "
                f"default_pool_size {cfg.pgbouncer_pool}; {bouncer.dir})")
        chat = start_chat_api(cfg, "bench_chat")
        servers.append(chat)
        if cfg.baseline_bin:
            servers.append(start_chat_api(cfg, "bench_chat_before", "chat-api-before", cfg.baseline_bin,
                                          cfg.baseline_port))
        if bouncer is not None:
            servers.append(start_chat_api(cfg, "bench_chat_pgbouncer", "chat-api-pgbouncer",
                                          port=cfg.pgbouncer_chat_port, extra_env={
                                              "DATABASE_URL": bouncer.url_for("bench_chat_pgbouncer"),
                                              "DATABASE_POOLER": "transaction", "RUN_MIGRATIONS": "false"}))
        if not cfg.skip_thin:
            servers.append(start_thin(cfg, "bench_thin"))
        if not cfg.skip_peer:
            servers.append(start_peer(cfg, "bench_peer"))
        for server in servers:
            server.wait_ready(cfg.peer_start_timeout if server.kind == "peer" else cfg.start_timeout)
            log(f"{server.name} ready on :{server.port} (pid {server.pid})")

        # Seeding: the same shape on every server, through the API, concurrently.
        users = []
        for _ in range(cfg.seed_users):
            sub = str(uuid.uuid4())
            users.append({"id": sub, "token": mint_token(sub)})
        deep_sub, writer_sub = str(uuid.uuid4()), str(uuid.uuid4())
        deep = {"id": deep_sub, "token": mint_token(deep_sub)}
        writer = {"id": writer_sub, "token": mint_token(writer_sub)}
        apis = {s.name: Api(s.port) for s in servers}
        log(f"seeding {cfg.seed_users} users + the writer x {cfg.seed_chats_per_user} chats + 1 deep user x "
            f"{cfg.deep_chats} through POST /chat/ on {', '.join(apis)}")
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(servers)) as pool:
            futures = {s.name: pool.submit(seed_server, apis[s.name], s.name, users + [writer], deep,
                                           cfg.seed_chats_per_user, cfg.deep_chats, cfg.seed_workers)
                       for s in servers}
            seeds = {name: f.result() for name, f in futures.items()}
        report["seed"] = {"users": cfg.seed_users, "chats_per_user": cfg.seed_chats_per_user,
                          "writer": writer_sub, "deep_chats": cfg.deep_chats, "deep_skip": cfg.deep_skip,
                          "seconds": {n: s["seconds"] for n, s in seeds.items()},
                          "chat_api_vm_hwm_mb_after_seed": mb(read_status_kb(chat.pid, "VmHWM")),
                          "deep_cursor": {}}

        # The deep user's cursor at depth DEEP_SKIP (each chat-api build: the ids
        # differ per server), checked against skip mode.
        cursors: dict[str, str] = {}
        for server in servers:
            if server.kind == "chat-api":
                cursor, walk_requests = walk_cursor(apis[server.name], deep["token"], cfg.deep_skip)
                by_cursor = page_ids(apis[server.name], deep["token"], f"/chat/?limit=10&cursor={cursor}")
                by_skip = page_ids(apis[server.name], deep["token"], f"/chat/?skip={cfg.deep_skip}&limit=10")
                if by_cursor != by_skip or len(by_cursor) != 10:
                    raise RuntimeError(f"{server.name}: the deep cursor page differs from the skip page: "
                                       f"{by_cursor[:2]}… vs {by_skip[:2]}…")
                cursors[server.name] = cursor
                report["seed"]["deep_cursor"][server.name] = {"cursor": cursor, "walk_requests": walk_requests,
                                                              "matches_skip_page": True}
                log(f"{server.name}: deep cursor found by walking {walk_requests} pages of 100; "
                    f"its page equals skip={cfg.deep_skip}")
            else:
                page = page_ids(apis[server.name], deep["token"], f"/chat/?skip={cfg.deep_skip}&limit=10")
                if len(page) != 10:
                    raise RuntimeError(f"{server.name}: the skip={cfg.deep_skip} page has {len(page)} items")

        data_files = {}
        for server in servers:
            path = cfg.work_dir / f"data-{server.name}.lua"
            write_lua_data(path, users, writer, seeds[server.name]["ids"], deep, cfg.deep_skip,
                           cursors.get(server.name))
            data_files[server.name] = path

        # Warm-up, not measured: the servers' pools grow to the load's size (a
        # new PostgreSQL connection costs a request tens of milliseconds), the
        # caches fill. Read-only, so the data stay as seeded.
        if cfg.warmup_s:
            for server in servers:
                for scenario in ("get", "list"):
                    run_wrk(cfg, f"{server.name}-warmup-{scenario}", f"http://127.0.0.1:{server.port}", scenario,
                            cfg.connections, cfg.threads, cfg.warmup, {"BENCH_DATA": str(data_files[server.name])})
            log(f"warmed up ({cfg.warmup} of get and {cfg.warmup} of list on each server, not measured)")

        # The scenarios, each server in turn, VACUUM ANALYZE before each run;
        # ROUNDS > 1 repeats each scenario (all servers again) and keeps each
        # server's median round. The chat-api subjects (chat-api, and
        # chat-api-before and/or chat-api-pgbouncer when run) go first, their
        # order rotated by one every run, so that none always goes first (with
        # two of them: they swap places every other run).
        scenarios = report.setdefault("scenarios", {})

        def run_one(server: Server, scenario: str, label: str) -> dict:
            extra = {"BENCH_DATA": str(data_files[server.name])}
            pool_info = None
            if scenario in DELETES:
                pool_path, pool_info = ensure_pool(cfg, server, scenario, users, writer, seeds[server.name]["ids"],
                                                   data_files[server.name], report, label)
                extra["BENCH_POOL"] = str(pool_path)
            vacuum_analyze(cfg, server.db)
            before = scrape_metrics(server) if server.kind == "chat-api" else {}
            load = Path("/proc/loadavg").read_text().split()[0]
            sampler = Sampler(server)
            sampler.start()
            try:
                result = run_wrk(cfg, label, f"http://127.0.0.1:{server.port}", scenario, cfg.connections,
                                 cfg.threads, cfg.duration, extra)
            finally:
                usage = sampler.stop()
            result.update(usage)
            result["loadavg_before"] = float(load)
            if pool_info is not None:
                result["pool"] = pool_info
            if before:
                after = scrape_metrics(server)
                # Cross-check of the pgbench scripts: statements per request
                # (BEGIN/COMMIT not counted) and the pool's size afterwards.
                # Requests cut off when wrk stops are counted here, not by wrk.
                done = max(result["requests"], 1)
                result["db"] = {
                    "statements_per_request": round((after.get("db_statements_total", 0)
                                                     - before.get("db_statements_total", 0)) / done, 3),
                    "transactions_per_request": round((after.get("db_transactions_total", 0)
                                                       - before.get("db_transactions_total", 0)) / done, 3),
                    "pool_open_after": after.get("pool_idle", 0) + after.get("pool_in_use", 0),
                    "pool_max": after.get("pool_max"),
                }
            if not server.alive():
                server.died_during_run = True
                result["server_died"] = True
                log(f"!! {server.name} died during {scenario} (exit {server.proc.returncode}); "
                    f"log: {server.log_path}")
            dry = f"  POOL RAN DRY in {result['threads_ran_dry']} thread(s)" if result["threads_ran_dry"] else ""
            log(f"{scenario:<17} {server.name:<15} {result['rps']:>10.1f} req/s  p50 {result['p50_ms']:.2f} ms  "
                f"p99 {result['p99_ms']:.2f} ms  errors {result['errors']}  "
                f"RSS {result['peak_rss_mb']} MB  cpu {result['cpu_cores']} cores{dry}")
            return result

        turn = 0
        for scenario in cfg.scenarios:
            entry = scenarios.setdefault(scenario, {})
            rounds: dict[str, list[dict]] = {}
            for rnd in range(cfg.rounds):
                lead = [s for s in servers if s.kind == "chat-api"]
                shift = turn % len(lead)
                order = lead[shift:] + lead[:shift] + [s for s in servers if s.kind != "chat-api"]
                turn += 1
                for server in order:
                    if scenario in CANNOT.get(server.kind, {}):
                        entry[server.name] = {"skipped": CANNOT[server.kind][scenario]}
                        continue
                    if not server.alive():
                        server.died_during_run = True
                        entry[server.name] = {"skipped": f"{server.name} is not running "
                                                         f"(exit {server.proc.returncode})"}
                        continue
                    label = f"{server.name}-{scenario}" + (f"-round{rnd + 1}" if cfg.rounds > 1 else "")
                    rounds.setdefault(server.name, []).append(run_one(server, scenario, label))
            for name, results in rounds.items():
                chosen = sorted(results, key=lambda r: r["rps"])[len(results) // 2]
                if len(results) > 1:
                    chosen["rounds"] = [{"rps": r["rps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                                         "errors": r["errors"], "threads_ran_dry": r["threads_ran_dry"]}
                                        for r in results]
                    chosen["errors_all_rounds"] = sum(r["errors"] for r in results)
                    chosen["threads_ran_dry_all_rounds"] = sum(r["threads_ran_dry"] for r in results)
                entry[name] = chosen
    finally:
        for server in servers:
            server.stop()
        if bouncer is not None:  # after its client, chat-api-pgbouncer
            bouncer.stop()
        report["server_logs"] = {s.name: log_summary(s) for s in servers + ([bouncer] if bouncer else [])}

    # pgbench after the servers are gone: their pools would otherwise hold
    # connections that pgbench's clients need (and compete for the CPU).
    if not cfg.skip_pgbench:
        report["pgbench"] = pgbench_phase(cfg)
        for scenario, result in report["pgbench"]["scenarios"].items():
            report["scenarios"].setdefault(scenario, {})["pgbench"] = result


def chats_by_user(cfg: Config, db: str, user_ids: list[str]) -> dict[str, list[str]]:
    """Every chat id of these users, read from the server's database: a plain
    SELECT on chats(id, user_id), which chat-api, thin and the peer all have."""
    out: dict[str, list[str]] = {u: [] for u in user_ids}
    in_list = ",".join(f"'{u}'" for u in user_ids)
    text = psql(cfg, db, f"SELECT user_id, id FROM chats WHERE user_id IN ({in_list})")
    for line in text.splitlines():
        user, chat = line.split("|")
        out[user].append(chat)
    return out


def ensure_pool(cfg: Config, server: Server, scenario: str, users: list[dict], writer: dict,
                stable: dict[str, list[str]], data_file: Path, report: dict, label: str) -> tuple[Path, dict]:
    """The chats a delete scenario may delete on this server, so that it never
    runs dry within DURATION: every chat of its user(s) except the seeded ones
    (which get, patch and the mixes read), i.e. what the create scenarios and
    earlier fills made. Sized DELETE_HEADROOM x this server's measured create
    rate (create for `delete`, create_one_user for the one-user ones) x DURATION
    x the scenario's share of deletes; topped up with wrk running the same
    create scenario for as long as the shortfall needs at the measured rate.
    Returns the pool file for wrk (BENCH_POOL) and what was done."""
    kind, share = DELETES[scenario]
    owners = users if kind == "many" else [writer]
    create_scenario = "create" if kind == "many" else "create_one_user"
    measured = report.get("scenarios", {}).get(create_scenario, {}).get(server.name, {}).get("rps")
    fill_rate = measured
    fills: list[dict] = []

    def current() -> dict[str, list[str]]:
        found = chats_by_user(cfg, server.db, [u["id"] for u in owners])
        return {u: [c for c in ids if c not in keep] for u, ids in found.items()
                for keep in [set(stable[u])]}

    def needed_per_owner(rate: float) -> int:
        return max(1, int(cfg.delete_headroom * rate * cfg.duration_s * share / len(owners)) + 1)

    have = current()
    for _ in range(4):
        rate = measured or (fills[0]["rps"] if fills else None)
        if rate is not None:
            need = needed_per_owner(rate)
            shortfall = max(need - len(ids) for ids in have.values()) * len(owners)
            if shortfall <= 0:
                break
            seconds = min(cfg.fill_max_s, int(shortfall / max(fill_rate or rate, 1.0) * 1.15) + 1)
        else:
            seconds = 2  # no create measured in this run: a short fill measures the rate first
        result = run_wrk(cfg, f"{label}-fill{len(fills) + 1}", f"http://127.0.0.1:{server.port}",
                         create_scenario, cfg.connections, cfg.threads, f"{seconds}s", {"BENCH_DATA": str(data_file)})
        fills.append({"seconds": seconds, "rps": result["rps"], "requests": result["requests"],
                      "errors": result["errors"]})
        fill_rate = result["rps"]
        if result["errors"]:
            log(f"warning: {server.name}: filling the {scenario} pool had {result['errors']} errors "
                f"({result['statuses']})")
        have = current()
    rate = measured or (fills[0]["rps"] if fills else 0.0)
    path = cfg.work_dir / f"pool-{label}.lua"
    lines = ["-- generated by bench/bench.py: the chats this delete scenario may delete", "return {"]
    lines += [f"  {lua_user(u, have[u['id']])}," for u in owners]
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")
    total = sum(len(ids) for ids in have.values())
    info = {"chats": total, "min_per_user": min(len(ids) for ids in have.values()), "users": len(owners),
            "sized_from": f"{create_scenario} {rate:.0f} req/s" + ("" if measured else " (fill)"),
            "wanted_per_user": needed_per_owner(rate) if rate else None, "fills": fills}
    log(f"{scenario} pool on {server.name}: {total} chats over {len(owners)} user(s)"
        f"{f' after {len(fills)} fill(s) of ' + '+'.join(str(f['seconds']) + 's' for f in fills) if fills else ''}")
    return path, info


def evaluate(cfg: Config, report: dict) -> list[dict]:
    checks: list[dict] = []

    def check(name: str, value, target: str, ok: bool | None, scenario: str | None = None) -> None:
        checks.append({"scenario": scenario, "check": name, "value": value, "target": target,
                       "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")})

    def at_least(name: str, value, minimum: float, scenario: str) -> None:
        check(name, value, f">= {minimum:g}", None if value is None else value >= minimum, scenario)

    results = report.get("scenarios", {})
    for scenario, entry in results.items():
        chat, pg = entry.get("chat-api", {}), entry.get("pgbench", {})
        ratios = entry.setdefault("ratios", {})
        have_chat = "rps" in chat
        # chat-api over each other service (req/s and p99), rounded for display
        # only after more digits than any target has.
        for other, key in (("chat-api-before", "before"), ("thin", "thin"), ("peer", "peer")):
            theirs = entry.get(other, {})
            if have_chat and "rps" in theirs:
                ratios[f"rps_chat_over_{key}"] = round(chat["rps"] / theirs["rps"], 4) if theirs["rps"] else None
                ratios[f"p99_chat_over_{key}"] = (round(chat["p99_ms"] / theirs["p99_ms"], 4)
                                                  if theirs["p99_ms"] else None)
        # chat-api through PgBouncer over chat-api direct (the other way round:
        # the pooler's cost shows as a figure below 1).
        pooled = entry.get("chat-api-pgbouncer", {})
        if have_chat and "rps" in pooled:
            ratios["rps_pgbouncer_over_direct"] = round(pooled["rps"] / chat["rps"], 4) if chat["rps"] else None
            ratios["p99_pgbouncer_over_direct"] = (round(pooled["p99_ms"] / chat["p99_ms"], 4)
                                                   if chat["p99_ms"] else None)
        if have_chat and pg.get("tps"):
            ratios["rps_chat_over_pgbench"] = round(chat["rps"] / pg["tps"], 4)
        if scenario in ONE_VS_MANY:
            many = results.get(ONE_VS_MANY[scenario][0], {}).get("chat-api", {})
            if have_chat and many.get("rps"):
                ratios["rps_one_user_over_many_users"] = round(chat["rps"] / many["rps"], 4)

        if scenario in VS_BEFORE and cfg.baseline_bin:
            at_least("req/s chat-api / chat-api-before", ratios.get("rps_chat_over_before"), VS_BEFORE[scenario],
                     scenario)
        if scenario in VS_THIN and not cfg.skip_thin:
            at_least("req/s chat-api / thin", ratios.get("rps_chat_over_thin"), VS_THIN[scenario], scenario)
        if scenario in ONE_VS_MANY and ONE_VS_MANY[scenario][0] in results:
            many_name, factor = ONE_VS_MANY[scenario]
            at_least(f"req/s chat-api {scenario} / {many_name}", ratios.get("rps_one_user_over_many_users"),
                     factor, scenario)
        if scenario in RPS_VS_PEER and not cfg.skip_peer:
            at_least("req/s chat-api / peer", ratios.get("rps_chat_over_peer"), RPS_VS_PEER[scenario], scenario)
        if have_chat and not cfg.skip_peer and scenario not in CANNOT["peer"]:
            value = ratios.get("p99_chat_over_peer")
            check("p99 chat-api / peer", value, f"<= {P99_VS_PEER_MAX:g}",
                  None if value is None else value <= P99_VS_PEER_MAX, scenario)
        if scenario in VS_PGBENCH and not cfg.skip_pgbench:
            at_least("req/s chat-api / pgbench tps", ratios.get("rps_chat_over_pgbench"), VS_PGBENCH[scenario],
                     scenario)
        if have_chat:
            errors = chat.get("errors_all_rounds", chat["errors"])
            check("chat-api errors", errors, "== 0", errors == 0, scenario)
            check("chat-api peak RSS MB", chat["peak_rss_mb"], f"<= {RSS_LIMIT_MB:g}",
                  None if chat["peak_rss_mb"] is None else chat["peak_rss_mb"] <= RSS_LIMIT_MB, scenario)
        elif "chat-api" in entry:
            check("chat-api ran", entry["chat-api"].get("skipped"), "ran", False, scenario)
        if "rps" in pooled:
            errors = pooled.get("errors_all_rounds", pooled["errors"])
            check("chat-api-pgbouncer errors", errors, "== 0", errors == 0, scenario)
        elif "chat-api-pgbouncer" in entry:
            check("chat-api-pgbouncer ran", entry["chat-api-pgbouncer"].get("skipped"), "ran", False, scenario)
        # A delete pool that ran dry makes that service's figure meaningless
        # (its threads stopped early): every service's, since the ratios use them.
        for name in SERVICE_ORDER:
            r = entry.get(name, {})
            if scenario in DELETES and "rps" in r:
                dry = r.get("threads_ran_dry_all_rounds", r.get("threads_ran_dry", 0))
                check(f"{name} delete pool lasted DURATION (threads that ran dry)", dry, "== 0", dry == 0, scenario)
    for name in ("chat-api", "chat-api-pgbouncer"):
        logs = report.get("server_logs", {}).get(name)
        if logs:
            check(f"{name} exited cleanly (exit 0, never died)", logs["exit_code"], "== 0",
                  logs["exit_code"] == 0 and not logs["died_during_run"])
    return checks


# --------------------------------------------------------------------------- printing


def fmt(value, spec: str = ".1f", none: str = "-") -> str:
    if value is None:
        return none
    if isinstance(value, str):
        return value
    return format(value, spec)


def print_compare(cfg: Config, report: dict, checks: list[dict]) -> None:
    others = []
    if cfg.baseline_bin:
        others.append(f"before: {cfg.baseline_bin}")
    if cfg.pgbouncer:
        others.append(f"chat-api-pgbouncer: PgBouncer transaction mode, default_pool_size {cfg.pgbouncer_pool}")
    if not cfg.skip_thin:
        others.append(f"thin: pool {cfg.thin_pool}")
    if not cfg.skip_peer:
        others.append(f"peer: {cfg.peer_workers} workers x pool {cfg.peer_pool or 10}")
    print()
    print(f"chat-api benchmark  {report['started_at']}  {cfg.connections} connections, {cfg.threads} wrk threads, "
          f"{cfg.duration} per scenario"
          f"{f' x {cfg.rounds} rounds (median round shown)' if cfg.rounds > 1 else ''}, "
          f"chat-api pool {cfg.chat_api_pool}; {'; '.join(others) or 'chat-api alone'}")
    m = report["machine"]
    print(f"machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_mb']} MB, PostgreSQL {m['postgresql']}, "
          f"commit {str(m['git_commit'])[:12]}{' (dirty)' if m.get('git_dirty_files') else ''}")
    print()
    header = (f"{'scenario':<18}{'server':<20}{'req/s':>11}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'RSS MB':>9}"
              f"{'cpu':>6}")
    print(header)
    print("-" * len(header))
    for scenario, entry in report.get("scenarios", {}).items():
        first = True
        for name in SERVICE_ORDER + ["pgbench"]:
            if name not in entry:
                continue
            r = entry[name]
            label = scenario if first else ""
            first = False
            if name == "pgbench":
                print(f"{label:<18}{'pgbench':<20}{fmt(r['tps']):>11}{'':>10}{'':>10}{r['failed']:>8}"
                      f"   (tps; avg latency {r['latency_avg_ms']} ms)")
            elif "skipped" in r:
                print(f"{label:<18}{name:<20}{'n/a':>11}   ({r['skipped']})")
            else:
                dry = f"  pool ran dry ({r['threads_ran_dry']} threads)" if r.get("threads_ran_dry") else ""
                print(f"{label:<18}{name:<20}{fmt(r['rps']):>11}{fmt(r['p50_ms'], '.2f'):>10}"
                      f"{fmt(r['p99_ms'], '.2f'):>10}{r['errors']:>8}{fmt(r['peak_rss_mb']):>9}"
                      f"{fmt(r.get('cpu_cores'), '.2f'):>6}{dry}")
    print()
    columns = [("rps_chat_over_before", "req/s chat-api / chat-api-before", "÷ before", bool(cfg.baseline_bin)),
               ("rps_pgbouncer_over_direct", "req/s chat-api-pgbouncer / chat-api", "÷ direct", cfg.pgbouncer),
               ("rps_chat_over_thin", "req/s chat-api / thin", "÷ thin", not cfg.skip_thin),
               ("rps_chat_over_peer", "req/s chat-api / peer", "÷ peer", not cfg.skip_peer),
               ("p99_chat_over_peer", "p99 chat-api / peer", "p99 ÷ peer", not cfg.skip_peer),
               ("rps_chat_over_pgbench", "req/s chat-api / pgbench tps", "÷ pgbench", not cfg.skip_pgbench)]
    columns = [c for c in columns if c[3]]
    width = 21
    print("chat-api's req/s (p99 where said) over each other service's, same run"
          + ("; ÷ direct is chat-api-pgbouncer's req/s over chat-api's:" if cfg.pgbouncer else ":"))
    print(f"{'scenario':<18}" + "".join(f"{title:>{width}}" for _, _, title, _ in columns))
    print("-" * (18 + width * len(columns)))
    for scenario, entry in report.get("scenarios", {}).items():
        ratios = entry.get("ratios", {})
        cells = []
        for key, check_name, _, _ in columns:
            value = ratios.get(key)
            found = next((c for c in checks if c["scenario"] == scenario and c["check"] == check_name), None)
            if value is None:
                text = "n/a"
            else:
                text = f"{value:.3g}"
                if found:
                    text += f" {found['target'].replace(' ', '')} {found['result']}"
            cells.append(f"{text:>{width}}")
        print(f"{scenario:<18}" + "".join(cells))
    print()
    one_user = [c for c in checks if c["check"].startswith("req/s chat-api ") and "_one_user / " in c["check"]]
    for c in one_user:
        print(f"one user vs many users: {c['check'][len('req/s chat-api '):]}: {fmt(c['value'], '.3g')} "
              f"(target {c['target']})  {c['result']}")
    dry = [c for c in checks if "ran dry" in c["check"]]
    if dry:
        bad = ", ".join(f"{c['check'].split()[0]} {c['scenario']}={c['value']}" for c in dry if c["result"] == "FAIL")
        print(f"delete pools lasted DURATION: {'no: ' + bad + ' (raise DELETE_HEADROOM)' if bad else 'yes'}  "
              f"{'FAIL' if bad else 'PASS'}")
    rss = [c for c in checks if c["check"] == "chat-api peak RSS MB"]
    for name in ("chat-api", "chat-api-pgbouncer"):
        errors = [c for c in checks if c["check"] == f"{name} errors"]
        if errors:
            bad = ", ".join(f"{c['scenario']}={c['value']}" for c in errors if c["result"] == "FAIL")
            print(f"{name} errors: {bad or 'none'}  {'FAIL' if bad else 'PASS'}")
    if rss:
        peak = max((c["value"] for c in rss if c["value"] is not None), default=None)
        print(f"chat-api peak RSS: {peak} MB (target <= {RSS_LIMIT_MB:g})  "
              f"{'PASS' if all(c['result'] == 'PASS' for c in rss) else 'FAIL'}")
    for name, logs in report.get("server_logs", {}).items():
        interesting = {k: v for k, v in logs["lines_by_level"].items() if k not in {"INFO", "OTHER"}}
        print(f"{name} log: {interesting or 'no warnings or errors'}; exit {logs['exit_code']}"
              f"{'; DIED DURING THE RUN' if logs['died_during_run'] else ''}  ({logs['path']})")
    for name in SERVICE_ORDER:
        for scenario, entry in report.get("scenarios", {}).items():
            r = entry.get(name, {})
            if r.get("errors"):
                print(f"  {name} {scenario}: statuses {r['statuses']}, socket errors {r['socket_errors']}")
    failed_checks = [c for c in checks if c["result"] == "FAIL"]
    if failed_checks:
        print("\nFAILED:")
        for c in failed_checks:
            print(f"  {c['scenario'] or '-'}: {c['check']} = {c['value']} (target {c['target']})")
    passed = sum(c["result"] == "PASS" for c in checks)
    failed = len(failed_checks)
    print(f"\nverdict: {passed} PASS, {failed} FAIL, {sum(c['result'] == 'n/a' for c in checks)} n/a")


# --------------------------------------------------------------------------- scale mode


def scale(cfg: Config, report: dict) -> None:
    report["kind"] = "scale"
    db = "bench_scale"
    report["databases"] = [db]
    big, small = str(uuid.uuid4()), str(uuid.uuid4())
    recreate_db(cfg, db)
    migrate(cfg, db)
    log(f"seeding {cfg.scale_chats} chats for one user and {cfg.scale_small_chats} for another, in SQL")
    t0 = time.monotonic()
    psql(cfg, db, file=HERE / "scale" / "seed.sql", variables={
        "big_user": big, "small_user": small, "big_n": cfg.scale_chats, "small_n": cfg.scale_small_chats})
    seed_seconds = time.monotonic() - t0
    t0 = time.monotonic()
    vacuum_analyze(cfg, db)
    vacuum_seconds = time.monotonic() - t0
    counts = psql(cfg, db, f"SELECT sum(n) AS total FROM user_chat_counts WHERE user_id IN ('{big}', '{small}') GROUP BY user_id ORDER BY total DESC")
    log(f"seeded in {seed_seconds:.1f}s, VACUUM ANALYZE {vacuum_seconds:.1f}s; chat counts: {counts.split()}")

    def position(user: str, depth: int) -> tuple[str, str]:
        """(cursor naming item `depth`, id of item depth + 1), from SQL."""
        rows = psql(cfg, db, (
            "SELECT (extract(epoch FROM created_at) * 1000000)::bigint, id FROM chats "
            f"WHERE user_id = '{user}' ORDER BY created_at DESC, id DESC OFFSET {depth - 1} LIMIT 2")).splitlines()
        micros, chat_id = rows[0].split("|")
        return chat_api_cursor(int(micros), chat_id), rows[1].split("|")[1]

    big_cursor, big_next = position(big, cfg.scale_depth)
    small_depth = cfg.scale_small_chats // 2
    small_cursor, small_next = position(small, small_depth)

    server = start_chat_api(cfg, db)
    tokens = {big: mint_token(big), small: mint_token(small)}
    try:
        server.wait_ready(cfg.start_timeout)
        api = Api(server.port)
        for user, cursor, expected in ((big, big_cursor, big_next), (small, small_cursor, small_next)):
            got = page_ids(api, tokens[user], f"/chat/?limit=10&cursor={cursor}")
            if not got or got[0] != expected:
                raise RuntimeError(f"the computed cursor does not lead where SQL says: {got[:1]} vs {expected}")
        log("computed cursors checked against the API")
        runs = [
            ("small_first", small, "/chat/?limit=10",
             f"first page, user with {cfg.scale_small_chats} chats (the baseline)"),
            ("big_first", big, "/chat/?limit=10", f"first page, user with {cfg.scale_chats} chats"),
            ("big_cursor_deep", big, f"/chat/?limit=10&cursor={big_cursor}",
             f"cursor page {cfg.scale_depth} items deep, user with {cfg.scale_chats} chats"),
            ("small_cursor_mid", small, f"/chat/?limit=10&cursor={small_cursor}",
             f"cursor page {small_depth} items deep, user with {cfg.scale_small_chats} chats"),
            ("big_skip_deep", big, f"/chat/?skip={cfg.scale_depth}&limit=10",
             f"skip={cfg.scale_depth}, user with {cfg.scale_chats} chats (what deep skip costs)"),
        ]
        if cfg.warmup_s:  # not measured: lets the pool grow to the load's size first
            run_wrk(cfg, "scale-warmup", f"http://127.0.0.1:{server.port}", "static", cfg.scale_connections,
                    cfg.scale_threads, cfg.warmup, {"BENCH_PATH": runs[0][2], "BENCH_TOKEN": tokens[runs[0][1]]})
        results = report.setdefault("scenarios", {})
        for name, user, path, description in runs:
            sampler = Sampler(server)
            sampler.start()
            try:
                result = run_wrk(cfg, f"scale-{name}", f"http://127.0.0.1:{server.port}", "static",
                                 cfg.scale_connections, cfg.scale_threads, cfg.scale_duration,
                                 {"BENCH_PATH": path, "BENCH_TOKEN": tokens[user]})
            finally:
                result_usage = sampler.stop()
            result.update(result_usage)
            result["description"] = description
            result["path"] = path
            results[name] = result
            log(f"{name:<17} {result['rps']:>9.1f} req/s  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
                f"  errors {result['errors']}")
            if not server.alive():
                server.died_during_run = True
                raise RuntimeError(f"chat-api died during {name}; log: {server.log_path}")
    finally:
        server.stop()
        report["server_logs"] = {"chat-api": log_summary(server)}
    report["seed"] = {"big_user": big, "small_user": small, "big_chats": cfg.scale_chats,
                      "small_chats": cfg.scale_small_chats, "depth": cfg.scale_depth,
                      "seed_seconds": round(seed_seconds, 2), "vacuum_analyze_seconds": round(vacuum_seconds, 2),
                      "method": "generate_series in one transaction, user triggers disabled, the count written to slot 0 "
                                "explicitly, triggers re-enabled (bench/scale/seed.sql)"}


def evaluate_scale(cfg: Config, report: dict) -> list[dict]:
    checks = []
    results = report.get("scenarios", {})
    base = results.get("small_first")
    for name, result in results.items():
        if base and name != "small_first":
            result["p50_ratio"] = round(result["p50_ms"] / base["p50_ms"], 2) if base["p50_ms"] else None
            result["p99_ratio"] = round(result["p99_ms"] / base["p99_ms"], 2) if base["p99_ms"] else None
        if name in {"big_first", "big_cursor_deep"} and base:
            value = result[f"{cfg.scale_metric}_ratio"]
            checks.append({"scenario": name, "check": f"{cfg.scale_metric} / small user's first page", "value": value,
                           "target": "<= 2", "result": "PASS" if value is not None and value <= 2 else "FAIL"})
        checks.append({"scenario": name, "check": "errors", "value": result["errors"], "target": "== 0",
                       "result": "PASS" if result["errors"] == 0 else "FAIL"})
    return checks


def print_scale(cfg: Config, report: dict, checks: list[dict]) -> None:
    seed = report.get("seed", {})
    print()
    print(f"chat-api scale check  {report['started_at']}  {cfg.scale_connections} connections, "
          f"{cfg.scale_threads} wrk threads, {cfg.scale_duration} per run, pool {cfg.chat_api_pool}")
    print(f"seed: {seed.get('big_chats')} + {seed.get('small_chats')} chats in {seed.get('seed_seconds')} s (SQL)")
    print()
    header = (f"{'run':<18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p50 x':>8}{'p99 x':>8}{'errors':>8}"
              f"{'RSS MB':>8}  what")
    print(header)
    print("-" * (len(header) + 40))
    for name, r in report.get("scenarios", {}).items():
        print(f"{name:<18}{r['rps']:>10.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{fmt(r.get('p50_ratio'), '.2f'):>8}"
              f"{fmt(r.get('p99_ratio'), '.2f'):>8}{r['errors']:>8}{fmt(r['peak_rss_mb']):>8}  {r['description']}")
    print(f"\n(ratios are against small_first; the 2x rule is judged on {cfg.scale_metric}; "
          "big_skip_deep and small_cursor_mid are for information)")
    for c in checks:
        if c["check"] != "errors":
            print(f"  {c['scenario']:<17} {c['check']}: {c['value']}  (target {c['target']})  {c['result']}")
    bad = ", ".join(f"{c['scenario']}={c['value']}" for c in checks if c["check"] == "errors" and c["result"] == "FAIL")
    print(f"  errors: {bad or 'none'}")
    passed = sum(c["result"] == "PASS" for c in checks)
    failed = sum(c["result"] == "FAIL" for c in checks)
    print(f"\nverdict: {passed} PASS, {failed} FAIL")


# --------------------------------------------------------------------------- main


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "compare"
    if mode not in {"compare", "scale"}:
        sys.exit("usage: bench.py [compare|scale]")
    cfg = Config()
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.binary.exists():
        sys.exit(f"bench: {cfg.binary} not found (build it, or unset SKIP_BUILD)")
    if mode == "compare" and not cfg.skip_peer and not (cfg.peer_dir / "run.sh").exists():
        sys.exit(f"bench: the peer is not at {cfg.peer_dir} (set PEER_DIR, or SKIP_PEER=1)")
    if mode == "compare" and not cfg.skip_thin and not cfg.thin_bin.exists():
        sys.exit(f"bench: the thin reference's binary {cfg.thin_bin} is missing (run.sh builds it from THIN_DIR; "
                 "or SKIP_THIN=1)")
    if mode == "compare" and cfg.baseline_bin and not cfg.baseline_bin.exists():
        sys.exit(f"bench: BASELINE_BIN {cfg.baseline_bin} not found")
    if mode == "compare" and cfg.pgbouncer and not os.access(cfg.pgbouncer_bin, os.X_OK):
        sys.exit(f"bench: PGBOUNCER=1 but pgbouncer is missing ({cfg.pgbouncer_bin}): install it "
                 "(Debian/Ubuntu: sudo apt-get install pgbouncer), or set PGBOUNCER_BIN, or run without PGBOUNCER=1")
    if mode == "scale" and cfg.pgbouncer:
        log("note: PGBOUNCER=1 applies to the compare mode only; the scale mode runs chat-api directly")

    # SIGTERM (e.g. from run.sh's trap or a CI timeout) unwinds like Ctrl-C so
    # that the finally blocks stop the servers.
    signal.signal(signal.SIGTERM, on_sigterm)

    started = dt.datetime.now(dt.timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    report: dict = {"started_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "machine": machine_info(cfg),
                    "config": cfg.public() if mode == "compare" else cfg.scale_public(),
                    "work_dir": str(cfg.work_dir)}
    log(f"work dir (logs, wrk and pgbench output): {cfg.work_dir}")
    error = None
    try:
        if mode == "compare":
            compare(cfg, report)
        else:
            scale(cfg, report)
    except (Exception, KeyboardInterrupt) as exc:  # still write what was measured
        error = exc
        report["error"] = ("interrupted (Ctrl-C or SIGTERM)" if isinstance(exc, KeyboardInterrupt)
                           else f"{type(exc).__name__}: {exc}")
    finally:
        if not cfg.keep_dbs:
            for db in report.get("databases", []):
                drop_db(cfg, db)

    checks = evaluate(cfg, report) if mode == "compare" else evaluate_scale(cfg, report)
    report["checks"] = checks
    report["passed"] = sum(c["result"] == "PASS" for c in checks)
    report["failed"] = sum(c["result"] == "FAIL" for c in checks)
    report["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    report["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    cfg.results_dir.mkdir(parents=True, exist_ok=True)
    out = cfg.results_dir / (f"{stamp}.json" if mode == "compare" else f"scale-{stamp}.json")
    out.write_text(json.dumps(report, indent=2) + "\n")

    if mode == "compare":
        print_compare(cfg, report, checks)
    else:
        print_scale(cfg, report, checks)
    print(f"results: {out}")
    if error is not None:
        print(f"\nbench: the run stopped early: {report['error']}", file=sys.stderr)
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    if cfg.strict and report["failed"]:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
