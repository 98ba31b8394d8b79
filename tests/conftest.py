"""Shared fixtures: the tiny generated datasets (made once per test session, and small ones of a
test's own to damage) and how the tests run the repo's commands."""
import os
import resource
import signal
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if os.environ.get('PYTEST_XDIST_WORKER'):
    # make test runs two workers on two cores: one torch thread each, in the commands they
    # start too (set before anything imports torch, which reads it once)
    os.environ['OMP_NUM_THREADS'] = '1'

# A command that runs past its timeout gets SIGABRT (see run_bounded): no core files of it
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

# make test's two workers take whole modules (pytest-xdist --dist loadfile: a module's fixtures
# are made once), in this order: the longest first, as measured with --durations, so that no
# long one starts last and runs alone. The other modules follow in their usual order.
SLOWEST_FIRST = ['test_full_scale', 'test_resume', 'test_transfer', 'test_demo', 'test_study',
                 'test_bad_input', 'test_arms', 'test_slurm']


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(item.path).removesuffix('.py'),
                                         len(rank)))


@pytest.fixture(scope='session')
def tiny_imagenet(tmp_path_factory):
    from sd_transfer.datasets import make_tiny_imagenet
    root = tmp_path_factory.mktemp('data') / 'imagenet'
    make_tiny_imagenet(str(root), seed=0)
    return str(root)


@pytest.fixture
def imagenet_to_damage(tmp_path):
    """A test's own ImageNet-layout data, to damage; small: an epoch is 2 iterations (40
    images), validation 20 images."""
    from sd_transfer.datasets import make_tiny_imagenet
    root = tmp_path / 'imagenet'
    make_tiny_imagenet(str(root), train_per_class=4, val_per_class=2)
    return root


@pytest.fixture(scope='session')
def tiny_voc(tmp_path_factory):
    from sd_transfer.datasets import make_tiny_voc
    root = tmp_path_factory.mktemp('data') / 'VOCdevkit'
    make_tiny_voc(str(root), seed=0)
    return str(root)


def tool_env(extra=None) -> dict:
    """The environment for a repo command: this checkout's ``sd_transfer`` first on the path (the
    venv's editable install may point at another checkout), then ``extra``'s PYTHONPATH."""
    env = {**os.environ, 'PYTHONFAULTHANDLER': '1', **(extra or {})}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO, (extra or {}).get('PYTHONPATH')]))
    return env


def run_bounded(argv, timeout, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with output captured, whose timeout also ends what the command started:
    subprocess.run kills only its child, and then waits for ever on the pipes a hung grandchild
    (a study's run, a rank) still holds. A hung command's Python processes print where they
    hang (faulthandler, on the SIGABRT sent first)."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: each thread's stack
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
            raise AssertionError(f'{argv} ran past {timeout} s\n{out[-3000:]}\n{err[-3000:]}')
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def run_tool(*args, timeout=600, check=True, env=None):
    """Run a repo command the way a user does; return the CompletedProcess (output captured)."""
    proc = run_bounded([sys.executable, *args], timeout, cwd=REPO, env=tool_env(env))
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-3000:]}')
    return proc


class Exploit:
    """Pickled, it runs ``touch MARKER`` when unpickled: what weights-only loading must refuse."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))
