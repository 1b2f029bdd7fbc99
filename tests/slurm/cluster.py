"""A real single-node Slurm on loopback for the tests: munge, MariaDB, slurmdbd, slurmctld, slurmd.

Everything lives in a private folder (config, keys, state, logs, pid files, sockets) and every daemon
started here is stopped by its pid file. Installation (Debian packages) happens only where missing and
only as root; otherwise the tests that need Slurm skip with the reason."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.apt import Unavailable, which
from tests.apt import ensure_installed as install

PACKAGES = ["slurm-wlm", "munge", "slurmdbd", "mariadb-server"]
BINARIES = ["slurmctld", "slurmd", "slurmdbd", "munged", "mysqld", "sbatch", "sacctmgr"]


SlurmUnavailable = Unavailable
_which = which


def ensure_installed() -> None:
    install(BINARIES, PACKAGES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self, root: Path):
        self.root = root
        self.host = socket.gethostname()
        self.ports = {k: _free_port() for k in ("ctld", "slurmd", "dbd", "mysql")}
        self.env = dict(os.environ, SLURM_CONF=str(root / "slurm.conf"))
        self.pids: list[Path] = []
        self._mysqld: subprocess.Popen | None = None

    # ---- configuration
    def write_config(self) -> None:
        r = self.root
        for d in ("state", "spool", "db", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        mem = max(2048, int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20) - 2048)
        cpus = os.cpu_count() or 2
        sock = r / "munge.sock"
        (r / "slurm.conf").write_text(f"""ClusterName=vpotest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ports['ctld']}
SlurmdPort={self.ports['slurmd']}
AuthType=auth/munge
AuthInfo=socket={sock},cred_expire=10
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=kill_invalid_depend
ReturnToService=2
MpiDefault=none
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports['dbd']}
AccountingStoragePass={sock}
JobAcctGatherType=jobacct_gather/none
JobRequeue=1
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        dbd = r / "slurmdbd.conf"
        dbd.write_text(f"""AuthType=auth/munge
AuthInfo=socket={sock}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports['dbd']}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports['mysql']}
StorageUser=root
StorageLoc=slurm_acct_db
PidFile={r}/slurmdbd.pid
LogFile={r}/log/slurmdbd.log
""")
        dbd.chmod(0o600)
        key = r / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)

    # ---- daemons
    def _spawn(self, args: list[str], pid_file: Path, timeout: float = 30) -> None:
        subprocess.run(args, check=True, capture_output=True, env=self.env, timeout=timeout)
        self.pids.append(pid_file)
        self._wait(lambda: pid_file.exists(), f"{args[0]} did not write {pid_file}")

    def _wait(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ready():
                return
            time.sleep(0.3)
        raise SlurmUnavailable(what + self.logs())

    def logs(self) -> str:
        """The last lines of every daemon's log (for failure messages)."""
        tails = []
        for log in sorted((self.root / "log").glob("*.log")):
            tails.append(f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "".join(tails)

    def start(self) -> "LocalSlurm":
        """Starts every daemon and waits for the node to be idle; SlurmUnavailable says what failed."""
        try:
            return self._start()
        except (subprocess.SubprocessError, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            text = detail.decode(errors="replace") if isinstance(detail, bytes) else detail
            raise SlurmUnavailable(f"{exc} {text.strip()}{self.logs()}") from exc

    def _start(self) -> "LocalSlurm":
        r = self.root
        self.write_config()
        self._spawn([_which("munged"), f"--socket={r}/munge.sock", f"--key-file={r}/munge.key",
                     f"--pid-file={r}/munged.pid", f"--log-file={r}/log/munged.log", f"--seed-file={r}/munge.seed",
                     "--force"], r / "munged.pid")
        subprocess.run([_which("mysql_install_db") or "mysql_install_db", f"--datadir={r}/db", "--user=root",
                        "--auth-root-authentication-method=normal"], check=True, capture_output=True, timeout=120)
        mysqld = subprocess.Popen([_which("mysqld"), f"--datadir={r}/db", f"--socket={r}/mysql.sock",
                                   f"--port={self.ports['mysql']}", "--bind-address=127.0.0.1", "--user=root",
                                   f"--pid-file={r}/mysqld.pid", f"--log-error={r}/log/mysqld.log",
                                   "--skip-grant-tables", "--skip-networking=0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.pids.append(r / "mysqld.pid")
        self._mysqld = mysqld
        self._wait(lambda: _port_open(self.ports["mysql"]) or _exited(mysqld), "mysqld did not start")
        if mysqld.poll() is not None:
            raise SlurmUnavailable(f"mysqld exited with code {mysqld.returncode}{self.logs()}")
        self._spawn([_which("slurmdbd")], r / "slurmdbd.pid")  # reads slurmdbd.conf beside SLURM_CONF
        self._wait(lambda: _port_open(self.ports["dbd"]), "slurmdbd did not listen")
        self.run(["sacctmgr", "-i", "add", "cluster", "vpotest"], check=False)
        self._spawn([_which("slurmctld")], r / "slurmctld.pid")
        self._spawn([_which("slurmd")], r / "slurmd.pid")
        self._wait(lambda: self.node_state() == "idle", "the node did not become idle")
        return self

    def run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True, env=self.env, check=check, timeout=60)

    def node_state(self) -> str:
        return self.run(["sinfo", "-h", "-o", "%T"], check=False).stdout.strip()

    def state(self, job_id: str) -> list[str]:
        """[state, reason] of a queued or running job (empty once Slurm has forgotten it)."""
        return self.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], check=False).stdout.split()

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM to every daemon started here (by its pid file), SIGKILL to those still up after grace_s."""
        if self._mysqld is not None and not (self.root / "mysqld.pid").exists():
            self._mysqld.terminate()  # started, but stopped before it wrote its pid file
        pids = [pid for pid in map(_read_pid, reversed(self.pids)) if pid is not None]
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.time() + grace_s
        while time.time() < deadline and any(_alive(pid) for pid in pids):
            if self._mysqld is not None:
                self._mysqld.poll()  # our child: reap it, or it lingers as a zombie that looks alive
            time.sleep(0.1)
        for pid in pids:
            _signal(pid, signal.SIGKILL)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _exited(proc: subprocess.Popen) -> bool:
    return proc.poll() is not None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str]) -> int:
    """`python -m tests.slurm.cluster install` (CI set-up) or `up` (a cluster to try things by hand)."""
    import tempfile

    try:
        ensure_installed()
        if argv[1:] == ["up"]:
            cluster = LocalSlurm(Path(tempfile.mkdtemp(prefix="vpo-slurm-"))).start()
            print(f"export SLURM_CONF={cluster.env['SLURM_CONF']}   # Ctrl-C stops the daemons", flush=True)
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
            cluster.stop()
    except SlurmUnavailable as exc:
        print(f"no Slurm: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
