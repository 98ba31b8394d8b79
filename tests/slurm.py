"""A real one-node Slurm for tests: Debian's slurm-wlm (22.05) and munge, started under a
temporary folder and stopped after.

Installed with apt-get where missing (the tests run as root, as CI does). Jobs run as root on
this machine, with its cores as the node's CPUs; accounting (sacct) is off, so job states come
from ``scontrol show job``.
"""
import os
import shutil
import socket
import subprocess
import time

import pytest

DAEMONS = ('sbatch', 'srun', 'squeue', 'scontrol', 'scancel', 'slurmctld', 'slurmd', 'munged')


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(('127.0.0.1', 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _install():
    """apt-get install slurm-wlm munge, or skip saying why not."""
    if all(shutil.which(d) or shutil.which(d, path='/usr/sbin') for d in DAEMONS):
        return
    if os.geteuid() != 0 or not shutil.which('apt-get'):
        pytest.skip('no Slurm here, and apt-get (as root) is not available to install '
                    "Debian's slurm-wlm and munge")
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    install = ['apt-get', 'install', '-y', '-q', 'slurm-wlm', 'munge']
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(['apt-get', 'update', '-q'], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)


def _start_munge():
    """munged as the munge user on its standard socket; returns whether we started it."""
    if subprocess.run(['pgrep', '-x', 'munged'], capture_output=True).returncode == 0:
        return False
    key = '/etc/munge/munge.key'
    if not os.path.isfile(key):
        with open(key, 'wb') as f:
            f.write(os.urandom(1024))
        shutil.chown(key, 'munge', 'munge')
        os.chmod(key, 0o400)
    os.makedirs('/run/munge', exist_ok=True)
    shutil.chown('/run/munge', 'munge', 'munge')
    subprocess.run(['runuser', '-u', 'munge', '--', '/usr/sbin/munged'], check=True)
    return True


class Slurm:
    """The cluster: ``env`` for clients (SLURM_CONF), ``run`` for commands, job states."""

    def __init__(self, root):
        self.root = str(root)
        self.conf = os.path.join(self.root, 'slurm.conf')
        self.env = dict(os.environ, SLURM_CONF=self.conf)

    def write_conf(self):
        host = socket.gethostname()
        ctld, slurmd = _free_ports(2)
        for name in ('state', 'spool', 'log'):
            os.makedirs(os.path.join(self.root, name), exist_ok=True)
        r = self.root
        with open('/proc/meminfo') as f:
            memory_mb = int(f.readline().split()[1]) // 1024 - 2048
        lines = [
            'ClusterName=sdtest', f'SlurmctldHost={host}', 'SlurmUser=root', 'SlurmdUser=root',
            f'SlurmctldPort={ctld}', f'SlurmdPort={slurmd}', 'AuthType=auth/munge',
            f'StateSaveLocation={r}/state', f'SlurmdSpoolDir={r}/spool',
            f'SlurmctldPidFile={r}/slurmctld.pid', f'SlurmdPidFile={r}/slurmd.pid',
            f'SlurmctldLogFile={r}/log/slurmctld.log', f'SlurmdLogFile={r}/log/slurmd.log',
            'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none',
            # a requeued job waits the credential lifetime before it starts again (default 120 s)
            'AuthInfo=cred_expire=10',
            'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core', 'ReturnToService=2',
            'MpiDefault=none', 'JobRequeue=1', 'KillWait=10', 'MinJobAge=600',
            f'NodeName={host} CPUs={os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN',
            f'PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP',
        ]
        with open(self.conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def run(self, *command, check=True, **kwargs):
        return subprocess.run(command, env=self.env, capture_output=True, text=True,
                              check=check, **kwargs)

    def start(self):
        _install()
        self.started_munge = _start_munge()
        self.write_conf()
        self.run('slurmctld', '-f', self.conf)
        self.run('slurmd', '-f', self.conf)
        for _ in range(100):
            state = self.run('sinfo', '-h', '-o', '%T', check=False).stdout.strip()
            if state == 'idle':
                return self
            time.sleep(0.2)
        raise RuntimeError(f'the test Slurm did not come up (node state {state!r}); see '
                           f'{self.root}/log')

    def stop(self):
        self.run('scancel', '--full', '--user=root', check=False)
        for daemon in ('slurmd', 'slurmctld'):
            pid_file = os.path.join(self.root, f'{daemon}.pid')
            if os.path.isfile(pid_file):
                with open(pid_file) as f:
                    pid = int(f.read())
                try:
                    os.kill(pid, 15)
                except ProcessLookupError:
                    pass
        if self.started_munge:
            subprocess.run(['pkill', '-x', 'munged'], check=False)

    def job(self, job_id) -> dict:
        """``scontrol show job``'s fields (JobState, ExitCode, Restarts, ...)."""
        out = self.run('scontrol', 'show', 'job', '-o', str(job_id)).stdout
        return dict(field.split('=', 1) for field in out.split() if '=' in field)

    def queue(self):
        """``{job name: (id, state)}`` of the jobs queued or running."""
        out = self.run('squeue', '-h', '-o', '%j|%i|%T').stdout
        return {name: (int(i), state) for name, i, state in
                (line.split('|') for line in out.splitlines())}

    def wait_idle(self, timeout):
        """Until no job is queued or running."""
        end = time.time() + timeout
        while time.time() < end:
            if not self.queue():
                return
            time.sleep(1)
        raise TimeoutError(f'jobs still queued after {timeout} s: {self.queue()}')
