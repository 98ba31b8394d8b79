"""What sd_transfer.entry sets up for every tool process, and what it must leave to workers."""
import subprocess
import sys

from conftest import REPO, tool_env

# A tool process that forks a worker the way torch's DataLoader does, the worker with unread data
# in its queue (its feeder thread cannot flush), then stops it as torch does with a worker that
# does not exit in time: SIGTERM, then join. With the tool's SIGTERM handler inherited, the
# worker ran exit handlers that wait for that feeder thread: the join never returned.
WORKER_STOPPED = """
import multiprocessing as mp, signal, time
import sd_transfer.entry

def work(queue):
    queue.put(b'x' * (1 << 20))  # more than a pipe holds: nobody reads it
    time.sleep(60)

assert signal.getsignal(signal.SIGTERM) is sd_transfer.entry._terminated
queue = mp.get_context('fork').Queue()
worker = mp.get_context('fork').Process(target=work, args=(queue,))
worker.start()
time.sleep(1)
worker.terminate()
worker.join(10)
print('worker exit code', worker.exitcode)
"""


def test_a_forked_worker_dies_of_sigterm_as_by_default():
    proc = subprocess.run([sys.executable, '-c', WORKER_STOPPED], cwd=REPO, env=tool_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'worker exit code -15' in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_the_tool_process_exits_through_its_exit_handlers_on_sigterm(tmp_path):
    marker = tmp_path / 'cleaned'
    script = f"""
import atexit, os, signal, time
import sd_transfer.entry
atexit.register(lambda: open({str(marker)!r}, 'w').close())
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
"""
    proc = subprocess.run([sys.executable, '-c', script], cwd=REPO, env=tool_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + 15 and marker.exists(), proc.stderr[-2000:]
