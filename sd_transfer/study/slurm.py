"""A study as Slurm jobs: one sbatch script per run and ``submit.sh``, which submits them chained.

Each job runs its tool under ``srun`` with mmengine's slurm launcher and ``--resume``, so a
requeued job (pre-emption, node failure, ``scontrol requeue``) continues from its last
checkpoint. What the scripts rely on, tested against a real Slurm 22.05 (tests/test_slurm.py):
srun is passed ``--cpus-per-task`` (22.05 to 23.02 do not inherit it from the job) and
``--kill-on-bad-exit=1`` (a failed rank stops the others); dependents are submitted with
``--kill-on-invalid-dep=yes`` (a failed pretraining cancels its transfers instead of leaving
them pending for ever); the time-limit warning ``--signal=B:USR1@S`` goes to the batch shell,
which forwards it through srun to the run; ``--requeue`` lets the job requeue itself.
"""
import hashlib
import os
import os.path as osp
import shlex
import subprocess
import sys
from typing import List

from .. import lock
from ..run_dir import STOPPED
from ..io import atomic_write_text
from . import REPO, Study, per_kind, save_plan


# The job script's body: the time-limit warning (USR1, --signal=B:...) comes to this shell; it
# passes it to the run, which saves a checkpoint where a resume continues exactly, writes
# WORK_DIR/stopped.json and exits; then the job requeues itself, and its dependents wait until
# it really finishes. (By the file, not srun's exit code: --kill-on-bad-exit turns the other
# ranks' exit into a signal's.) One inductor compile thread: its worker processes would die of
# the forwarded signal.
JOB_BODY = """\
cd {cwd}
export MASTER_PORT=$((10000 + SLURM_JOB_ID % 50000))  # jobs sharing a node must not share it
export TORCHINDUCTOR_COMPILE_THREADS=1
trap 'stop=1; [ -n "${{run:-}}" ] && kill -USR1 "$run"' USR1
srun --cpus-per-task="$SLURM_CPUS_PER_TASK" --kill-on-bad-exit=1 {command} &
run=$!
[ -n "${{stop:-}}" ] && kill -USR1 "$run"
wait "$run"; status=$?
while kill -0 "$run" 2>/dev/null; do wait "$run"; status=$?; done  # a trap ends a wait early
if [ -f {stopped} ]; then
  echo "stopped before the time limit with a checkpoint: requeued" >&2
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
"""

# submit.sh's helper: a job per name, never two; ids parsed as id[;cluster].
SUBMIT_FUNCTION = """\
new=0
submit() {  # NAME SCRIPT [AFTER_ID]: print the id of NAME's job, queued now or already
  local id
  id=$(squeue --me -h -n "$1" -o %i | head -n 1)
  if [ -n "$id" ]; then
    echo "$(basename "$2" .sh): already queued or running as job $id; not submitted again" >&2
  else
    id=$(sbatch --parsable ${3:+--dependency=afterok:$3 --kill-on-invalid-dep=yes} "$2")
    id=${id%%;*}
    new=$((new + 1))
    echo "$(basename "$2" .sh): submitted as job $id${3:+, after job $3}" >&2
  fi
  echo "$id"
}
"""


def job_name(study: Study, run=None) -> str:
    """Unique per study and run (by its work dir, not its place in the plan, which moves when
    the study file gains a seed): how a resubmission finds a run's job in the queue."""
    def tag(path):
        return hashlib.sha256(osp.abspath(path).encode()).hexdigest()[:8]
    return f"sdt_{tag(study.work_dir)}_{'report' if run is None else tag(run.work_dir)}"


def _queued() -> dict:
    """``{job name: id}`` of this user's queued or running jobs; empty without Slurm here."""
    try:
        out = subprocess.run(['squeue', '--me', '-h', '-o', '%j %i'], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)


def _header(study: Study, name: str, kind: str, log: str) -> List[str]:
    slurm = study.slurm
    gpus = study.processes(kind)
    tasks = f'--ntasks-per-node={gpus} --gres=gpu:{gpus}' if gpus else '--ntasks-per-node=1'
    header = ['#!/usr/bin/env bash', f'#SBATCH -J {name}',
              f"#SBATCH -p {slurm.get('partition', 'PARTITION')}", f'#SBATCH -N 1 {tasks}',
              f"#SBATCH --cpus-per-task={per_kind(slurm.get('cpus_per_task', 5), kind)}",
              '#SBATCH --requeue',
              f"#SBATCH --signal=B:USR1@{per_kind(slurm.get('signal_seconds', 1800), kind)}",
              f'#SBATCH -o {log} --open-mode=append']  # a requeued job adds
    for key, option in (('time', '-t'), ('account', '-A'), ('qos', '--qos'), ('mem', '--mem')):
        value = per_kind(slurm.get(key), kind)
        if value:
            header.append(f'#SBATCH {option} {value}')
    return header


def write_slurm(study: Study) -> str:
    """One sbatch script per unfinished run and ``submit.sh`` chaining them; return its path.

    ``submit.sh`` submits each run unless a job of its name is queued or running already (then
    its dependents wait for that job), transfers with ``--dependency=afterok`` on their backbone
    and ``--kill-on-invalid-dep=yes`` (a failed pretraining cancels them), and the report last
    with ``afterany`` (it lists what failed). Runs that hold their work-dir lock outside the
    queue are left out, with their transfers.
    """
    save_plan(study)
    folder = osp.abspath(osp.join(study.work_dir, 'slurm'))
    os.makedirs(folder, exist_ok=True)
    here = shlex.quote(os.getcwd())  # the study's relative paths start here
    python = shlex.quote(sys.executable)  # the environment that wrote the scripts
    queued = _queued()
    submit = ['#!/usr/bin/env bash', '# Submits the study; transfers wait for their backbone.',
              'set -euo pipefail', f'cd {here}', SUBMIT_FUNCTION, 'ids=()']
    job_of, outside = {}, set()
    for run in study.runs:
        if run.finished():
            continue
        name = job_name(study, run)
        holder = lock.holder(run.work_dir)
        if run.after in outside or (holder and name not in queued):
            print(f'[{run.index}] {run.name}: ' + (
                f'in use outside this queue ({holder}): not submitted' if holder else
                'its backbone is being trained outside this queue: not submitted; run the '
                'study again when it has finished'))
            outside.add(run.name)
            continue
        script = osp.join(folder, f'{run.index:03d}_{run.kind}_{run.name.replace("/", "__")}.sh')
        command = ' '.join(shlex.quote(c) for c in [python, *run.command('slurm')])
        body = JOB_BODY.format(cwd=here, command=command,
                               stopped=shlex.quote(osp.join(run.work_dir, STOPPED)))
        log = f'{osp.splitext(script)[0]}.%j.out'
        atomic_write_text('\n'.join(_header(study, name, run.kind, log)) + '\n' + body,
                          script)
        var = f'job{run.index}'
        after = f' "${job_of[run.after]}"' if run.after in job_of else ''
        job_of[run.name] = var
        submit += [f'{var}=$(submit {name} {shlex.quote(script)}{after})', f'ids+=(${var})']
    report_cmd = ' '.join(shlex.quote(c) for c in [
        python, osp.relpath(osp.join(REPO, 'tools', 'report.py')), study.work_dir, '--out',
        osp.join(study.work_dir, 'report'), '--plan', osp.join(study.work_dir, 'plan.json')])
    report_name = job_name(study)
    submit += [
        '# the report after every run, whatever their end; one that waits for older jobs is',
        '# replaced when something new was submitted',
        f'if [ "$new" -gt 0 ]; then scancel --me -n {report_name} --state=PENDING || true; fi',
        'dep=$(IFS=:; echo "${ids[*]}")',
        f'if [ -z "$(squeue --me -h -n {report_name} -o %i)" ]; then',
        f'  sbatch --parsable ${{dep:+--dependency=afterany:$dep}} -J {report_name} -p '
        f"{shlex.quote(study.slurm.get('partition', 'PARTITION'))} -N 1 "
        f'-o {folder}/report.%j.out --wrap {shlex.quote(report_cmd)} >/dev/null',
        'fi',
        'echo "$new run(s) submitted; ${#ids[@]} queued or running; the report after them"']
    path = osp.join(folder, 'submit.sh')
    atomic_write_text('\n'.join(submit) + '\n', path)
    os.chmod(path, 0o755)
    return path
